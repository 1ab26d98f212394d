"""remote::milvus: a Milvus server (uri + token), one collection per vector store."""
