"""The local models: embeddings, the chat model, the reranker, and finding model files."""
