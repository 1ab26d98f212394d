"""inline::localfs: file bytes in a directory of the node the provider replica runs on."""

from providers.inline.localfs.config import LocalFSConfig


def create_provider(config: LocalFSConfig):
    from providers.inline.localfs.files import LocalFSFiles

    return LocalFSFiles(config)
