"""The CRM's writes through the API and the sync's writes through the collection writer
meet on the same documents: neither undoes the other."""

import json
import uuid
from datetime import timedelta

from mls_assets.cli import main
from mls_assets.lib.catalogue import ACTIVE, CLOSED, EXPIRED, LEAD_EVENTS
from mls_assets.lib.leads.keys import KEYS_COLLECTION
from mls_assets.lib.store.changes import FeedSequence
from mls_assets.lib.store.writes import CollectionWriter
from mls_assets_tests.support.leads import ALPHA_GPS, expired_doc

LEAD = "/v1/tenants/alpha/expired-listings/S1"
PATCHED = {
    "leadStatus": "contacted",
    "voicemailSent": True,
    "voicemailSentDate": "2026-11-21T10:00:00+00:00",
    "ownerPhone": "+1 555 0100",
}


def sync(database, spec, doc):
    """One write of the replication chain: the listing into `spec`, leaving its siblings."""
    siblings = [database[s.collection_name(ALPHA_GPS)] for s in (ACTIVE, CLOSED, EXPIRED) if s is not spec]
    CollectionWriter(
        database[spec.collection_name(ALPHA_GPS)],
        spec,
        siblings=siblings,
        sequence=FeedSequence(database, ALPHA_GPS),
        run_id=uuid.uuid4().hex,
    ).write([doc])


def test_a_sync_after_a_patch_keeps_every_patched_field(api, alpha_key, leads_db):
    sync(leads_db, EXPIRED, expired_doc("S1", 2))
    patched = api.patch(LEAD, json=PATCHED, headers={**alpha_key, "If-Match": '"0"'})
    assert patched.status_code == 200
    etag_before = patched.headers["ETag"]
    newer = expired_doc("S1", 2, listPrice=450_000)
    newer["modificationTimestamp"] += timedelta(hours=1)
    sync(leads_db, EXPIRED, newer)
    stored = api.get(LEAD, headers=alpha_key).json()["listing"]
    assert stored["listPrice"] == 450_000
    assert {name: stored[name] for name in PATCHED} == PATCHED
    assert stored["etag"].startswith('"1.') and stored["etag"] != etag_before  # the listing changed: so did its tag


def test_a_listing_relisted_then_expired_again_keeps_its_lead_fields_and_history(api, alpha_key, leads_db):
    sync(leads_db, EXPIRED, expired_doc("S1", 10))
    assert api.patch(LEAD, json=PATCHED, headers={**alpha_key, "If-Match": '"0"'}).status_code == 200
    relisted = expired_doc("S1", 5, status="Active")
    for name in ("statusChangeDate", "expiresAt", "leadStatus", "skipTraced", "voicemailSent", "emailSent"):
        relisted.pop(name)
    sync(leads_db, ACTIVE, relisted)
    assert api.get(LEAD, headers=alpha_key).status_code == 404  # not a lead while it is on the market
    sync(leads_db, EXPIRED, expired_doc("S1", 1))
    again = api.get(LEAD, headers=alpha_key)
    assert {name: again.json()["listing"][name] for name in PATCHED} == PATCHED
    second = api.patch(LEAD, json={"leadStatus": "converted"}, headers={**alpha_key, "If-Match": again.headers["ETag"]})
    assert second.status_code == 200
    events = list(leads_db[LEAD_EVENTS.collection_name(ALPHA_GPS)].find({"listingKey": "S1"}).sort("version", 1))
    assert [e["after"].get("leadStatus") for e in events] == ["contacted", "converted"]


def test_api_key_commands_create_list_and_revoke(api, leads_db, capsys, monkeypatch):
    monkeypatch.setenv("MONGODB_DATABASE", leads_db.name)
    assert main(["api-keys", "create", "alpha", "--name", "dialer", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert api.get("/v1/tenants/alpha/expired-listings", headers=headers).status_code == 200
    assert created["key"] not in str(list(leads_db[KEYS_COLLECTION].find()))
    assert main(["api-keys", "list", "alpha", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["keyId"] for k in listed] == [created["keyId"]] and "key" not in listed[0]
    assert main(["api-keys", "revoke", "--key-id", created["keyId"]]) == 0
    assert api.get("/v1/tenants/alpha/expired-listings", headers=headers).status_code == 401
    assert main(["api-keys", "create", "Not A Tenant", "--name", "x"]) == 2
    assert main(["api-keys", "revoke", "--key-id", "0000000000000000"]) == 2
