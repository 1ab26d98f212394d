"""inline::parquet: datasets stored as Parquet files in a directory, imported through Ray Data."""

from providers.inline.parquet.config import ParquetDatasetsConfig


def create_provider(config: ParquetDatasetsConfig):
    from providers.inline.parquet.datasets import ParquetDatasets

    return ParquetDatasets(config)
