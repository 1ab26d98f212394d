"""remote::milvus: a Milvus server (uri + token), one collection per vector store."""

from providers.remote.milvus.config import RemoteMilvusConfig


def create_provider(config: RemoteMilvusConfig):
    from pymilvus import MilvusClient

    from providers.remote.milvus.vector_io import MilvusVectorIO

    client = MilvusClient(uri=config.uri, token=config.token or "", db_name=config.db_name)
    return MilvusVectorIO(client, config.index)
