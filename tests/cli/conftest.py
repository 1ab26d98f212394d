"""The starter graph as a user runs it: `serve run graphs.starter:app` in a terminal of its own,
with the web search key exported (the service a loopback stand-in). The CLI tests run before any
test starts the session's Ray (tests/conftest.py), and each leaves no Ray behind."""

import pytest

from graphs.leftovers import end_stale_processes
from graphs.serve_env import haproxy_folders
from tests.cli.processes import Command, port_is_free, ray_processes, user_env
from tests.fake_tavily import start_fake_tavily

BASE = "http://127.0.0.1:8000"  # where `serve run` listens
REGATTA = {"title": "Harbour regatta 2026 results", "url": "https://regatta.example/2026/results",
           "content": "The 2026 harbour regatta was won by the sloop Blue Heron, ahead of Kittiwake."}


def assert_nothing_running() -> None:
    """No Ray on this machine, once what a gone Ray left running is ended (`python -m cluster clean`)."""
    end_stale_processes(haproxy_folders())
    assert not ray_processes(), "another Ray runs on this machine: " + "; ".join(ray_processes())
    assert port_is_free(8000), "port 8000, where `serve run` and the serve configs listen, is taken"


@pytest.fixture(scope="package")
def web_search():
    """A loopback stand-in for the web search service the starter graph turns on with its key."""
    base_url, stop = start_fake_tavily([REGATTA], api_key="tvly-test")
    yield base_url, stop.requests
    stop()


@pytest.fixture(scope="package")
def starter(web_search, tmp_path_factory):
    """`serve run graphs.starter:app`, answering; the last starter test presses Ctrl-C."""
    assert_nothing_running()
    state = tmp_path_factory.mktemp("starter-cli")
    env = user_env(RAYSTACK_STATE_DIR=str(state), TAVILY_SEARCH_API_KEY="tvly-test",
                   TAVILY_SEARCH_BASE_URL=web_search[0])
    command = Command(["serve", "run", "graphs.starter:app"], env, state / "serve-run.log")
    try:
        command.wait_until_answering(f"{BASE}/v1/models", timeout_s=420)
        yield command
    finally:
        command.stop()
