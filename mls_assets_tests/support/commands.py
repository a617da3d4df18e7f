"""Watching what a client sends the server (pymongo's command monitoring)."""

from pymongo import monitoring

from mls_assets.lib.catalogue import SEQUENCE_FIELD


class Finds(monitoring.CommandListener):
    """The `find` commands sent to some collections while `watching`: their filters, and
    which were reads of a range of changes (a `_seq` range, not a one-document check)."""

    def __init__(self, names: set[str]) -> None:
        self.names, self.filters, self.change_reads, self.watching = names, [], [], True

    def started(self, event):
        command = event.command
        if self.watching and event.command_name == "find" and command.get("find") in self.names:
            self.filters.append(command.get("filter") or {})
            if SEQUENCE_FIELD in self.filters[-1] and command.get("limit") != 1:
                self.change_reads.append(command["find"])

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass
