"""The stores: catalog, vectors, chats, audit log, the writer lock and their recovery."""
