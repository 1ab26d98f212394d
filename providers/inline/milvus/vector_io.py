"""milvus-lite: Milvus in the replica's process, over a directory only it may open."""

from pathlib import Path
from typing import Any

from pymilvus import MilvusClient

from providers.inline.milvus.config import InlineMilvusConfig
from providers.remote.milvus.vector_io import MilvusVectorIO


class MilvusLiteVectorIO(MilvusVectorIO):
    def __init__(self, config: InlineMilvusConfig):
        self.db_path = Path(config.db_path).expanduser()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(MilvusClient(uri=str(self.db_path)), config.index)

    def _dense_index(self) -> dict[str, Any]:
        """milvus-lite reads build parameters only under a nested "params" key and silently builds
        with faiss's defaults (HNSW M=16, efConstruction=200) otherwise."""
        index = super()._dense_index()
        return {**index, "params": {"params": index["params"]}}

    async def shutdown(self) -> None:
        """Also stop milvus-lite's server, which holds the directory's lock."""
        from milvus_lite import server_manager_instance

        await super().shutdown()
        server_manager_instance.release_server(str(self.db_path))
