"""Ingestion: walking library folders, indexing files, keeping them in sync."""
