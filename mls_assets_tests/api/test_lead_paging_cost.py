"""A page of leads reads about its size from the server, also when some of its rows are
copies of listings an earlier page showed (counted by the server's own replies)."""

from datetime import UTC, datetime, timedelta

from pymongo import MongoClient, monitoring

from mls_assets.lib.catalogue import EXPIRED
from mls_assets.lib.leads.query import LeadFilter, list_leads
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, sync_configs

BASE = datetime(2026, 11, 1, tzinfo=UTC)
LEADS_EACH, SHARED_EVERY, LIMIT = 400, 8, 50


class DocumentsRead(monitoring.CommandListener):
    """Documents the server sent back for `find`/`getMore` of expired listings, and how many
    such commands there were."""

    def __init__(self) -> None:
        self.documents = self.commands = 0
        self._reads: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "getMore") and "$in" not in str(event.command.get("filter", "")):
            self._reads.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._reads:
            self._reads.discard(event.request_id)
            cursor = event.reply.get("cursor", {})
            self.documents += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))
            self.commands += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._reads.discard(event.request_id)


def test_a_page_reads_about_its_size_even_when_it_drops_copies_shown_before(mongo_uri, mongo_db):
    feeds = (FeedKey("t", "aa"), FeedKey("t", "bb"))
    sync_configs(mongo_db, [FeedConfig(tenant_id="t", mls=f.mls, mls_id="20190211172710340762000000") for f in feeds])
    for n, feed in enumerate(feeds):
        mongo_db[EXPIRED.collection_name(feed)].insert_many(
            [
                {
                    "listingKey": f"S{i}" if i % SHARED_EVERY == 0 else f"{feed.mls}{i}",
                    "leadStatus": "new",
                    "standardStatus": "Expired",
                    "statusChangeDate": BASE - timedelta(hours=i * 2 + n, minutes=7 * n * i % 50),
                }
                for i in range(LEADS_EACH)
            ]
        )
    listener = DocumentsRead()
    watched = MongoClient(mongo_uri, event_listeners=[listener])[mongo_db.name]
    try:
        cursor, served, read = None, [], []
        while True:
            listener.documents = listener.commands = 0
            page = list_leads(watched, "t", LeadFilter(), LIMIT, cursor)
            served += [lead["listingKey"] for lead in page["leads"]]
            read.append((listener.documents, listener.commands))
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        watched.client.close()
    shared = LEADS_EACH // SHARED_EVERY
    assert len(served) == len(set(served)) == 2 * LEADS_EACH - shared
    # Past the first two pages (a fresh walk learns the density there), a page reads at most
    # twice its rows in at most 2 windows a feed: dropping a shared copy costs a row, not a page.
    middle = read[2:-1]
    assert middle and all(documents <= 2 * (LIMIT + 1) for documents, _ in middle), read
    assert all(commands <= 2 * len(feeds) for _, commands in middle), read
