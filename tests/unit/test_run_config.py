"""Run config loading: substitution, validation, and errors that name the file and the key."""

from pathlib import Path

import pytest
import yaml

from providers.run_config import ConfigError, load_run_config, parse_run_config, substitute_env

STARTER = Path(__file__).parents[2] / "graphs" / "configs" / "starter.yaml"


def minimal(**changes):
    config = {
        "apis": ["inference", "models"],
        "providers": {"inference": [{"provider_id": "remote", "provider_type": "remote::openai", "config": {"base_url": "http://127.0.0.1:9/v1"}}]},
        "registered_resources": {"models": [{"model_id": "m", "provider_id": "remote"}]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": "/tmp/x.db"}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"}},
        },
    }
    config.update(changes)
    return config


def write(tmp_path, data) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("${env.A}", {"A": "x"}, "x"),
        ("${env.A:=d}", {}, "d"),
        ("${env.A:=d}", {"A": ""}, "d"),
        ("${env.A:=d}", {"A": "set"}, "set"),
        ("${env.A:+on}", {"A": "1"}, "on"),
        ("${env.A:+on}", {}, ""),
        ("${env.A:+on}", {"A": ""}, ""),
        ("pre-${env.A:=a}-${env.B:=b}", {"B": "z"}, "pre-a-z"),
    ],
)
def test_substitution(text, env, expected):
    assert substitute_env(text, env) == expected


def test_unset_variable_without_default_names_it_and_the_key(tmp_path):
    path = write(tmp_path, minimal(server={"port": "${env.NOT_SET_ANYWHERE}"}))
    with pytest.raises(ConfigError) as err:
        load_run_config(path, environ={})
    assert str(path) in str(err.value)
    assert "NOT_SET_ANYWHERE" in str(err.value) and "server.port" in str(err.value)


def test_whole_value_placeholder_takes_the_scalar_type():
    config = parse_run_config(minimal(server={"port": "${env.PORT:=8123}"}), "t", environ={})
    assert config.server.port == 8123


def test_provider_with_empty_id_is_switched_off():
    data = minimal()
    data["providers"]["inference"].append(
        {"provider_id": "${env.OPENAI_API_KEY:+openai}", "provider_type": "remote::openai", "config": {}}
    )
    assert [p.provider_id for _, p in parse_run_config(data, "t", environ={}).provider_entries()] == ["remote"]
    on = parse_run_config(data, "t", environ={"OPENAI_API_KEY": "k"})
    assert [p.provider_id for _, p in on.provider_entries()] == ["remote", "openai"]


def test_typo_in_a_key_is_named(tmp_path):
    path = write(tmp_path, minimal(sever={"port": 1}))
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(path) in str(err.value) and "sever" in str(err.value)


def test_typo_in_deployment_options_is_named():
    data = minimal()
    data["providers"]["inference"][0]["deployment"] = {"autoscaling_confg": {}}
    with pytest.raises(ConfigError, match="providers.inference.0.deployment.autoscaling_confg"):
        parse_run_config(data, "t")


def test_ingestion_settings_default_and_bad_ones_are_named():
    assert parse_run_config(minimal(), "t").vector_stores.ingestion.embedding_batch_size == 64
    data = minimal()
    data["vector_stores"] = {"ingestion": {"concurrency": 0}}
    with pytest.raises(ConfigError, match="vector_stores.ingestion.concurrency"):
        parse_run_config(data, "t")


def test_store_naming_a_missing_backend_names_both():
    data = minimal()
    data["storage"]["stores"]["metadata"]["backend"] = "nowhere"
    with pytest.raises(ConfigError) as err:
        parse_run_config(data, "t")
    assert "storage.stores.metadata" in str(err.value) and "nowhere" in str(err.value)


def test_store_on_a_backend_of_the_wrong_family_names_both():
    data = minimal()
    data["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": "/tmp/y.db"}
    data["storage"]["stores"]["metadata"] = {"backend": "sql", "namespace": "registry"}
    with pytest.raises(ConfigError) as err:
        parse_run_config(data, "t")
    assert "storage.stores.metadata" in str(err.value) and "'sql'" in str(err.value) and "sql_sqlite" in str(err.value)


def test_unknown_backend_type_is_named():
    data = minimal()
    data["storage"]["backends"]["kv"]["type"] = "kv_mongo"
    with pytest.raises(ConfigError, match="storage.backends.kv"):
        parse_run_config(data, "t")


def test_unknown_provider_type_lists_the_known_ones():
    data = minimal()
    data["providers"]["inference"][0]["provider_type"] = "remote::nope"
    with pytest.raises(ConfigError) as err:
        parse_run_config(data, "t")
    assert "providers.inference.0.provider_type" in str(err.value) and "remote::openai" in str(err.value)


def test_bad_provider_config_is_named():
    data = minimal()
    data["providers"]["inference"][0]["config"] = {"base_url": "http://x", "timeout_s": -1}
    with pytest.raises(ConfigError, match="providers.inference.0.config.timeout_s"):
        parse_run_config(data, "t")


def test_model_naming_a_missing_provider_is_an_error():
    data = minimal(registered_resources={"models": [{"model_id": "m", "provider_id": "ghost"}]})
    with pytest.raises(ConfigError, match="registered_resources.models.0.provider_id.*ghost"):
        parse_run_config(data, "t")


def test_duplicate_provider_ids_are_an_error():
    data = minimal()
    data["providers"]["inference"].append(dict(data["providers"]["inference"][0]))
    with pytest.raises(ConfigError, match="remote"):
        parse_run_config(data, "t")


def test_provider_under_an_api_not_listed_is_an_error():
    with pytest.raises(ConfigError, match="providers.inference"):
        parse_run_config(minimal(apis=["models"]), "t")


def test_missing_file_and_bad_yaml_are_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_run_config(tmp_path / "absent.yaml")
    path = write(tmp_path, "apis: [inference\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(path)


def test_starter_config_loads_with_and_without_openai_key():
    config = load_run_config(STARTER, environ={})
    ids = [p.provider_id for _, p in config.provider_entries()]
    assert ids == ["vllm", "sentence-transformers", "localfs", "milvus", "profanity-check", "builtin", "parquet",
                   "torchtune", "mcp"]
    assert {m.model_id for m in config.registered_resources.models} == {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"}
    with_key = load_run_config(STARTER, environ={"OPENAI_API_KEY": "sk-test"})
    assert "openai" in [p.provider_id for _, p in with_key.provider_entries()]


def test_starter_web_search_is_off_until_its_key_is_exported():
    assert load_run_config(STARTER, environ={}).registered_resources.tool_groups == []
    on = load_run_config(STARTER, environ={"TAVILY_SEARCH_API_KEY": "tvly-test"})
    assert "web-search" in [p.provider_id for _, p in on.provider_entries()]
    assert [g.toolgroup_id for g in on.registered_resources.tool_groups] == ["builtin::websearch"]


def guard_config(model: str) -> dict:
    return minimal(apis=["inference", "models", "safety"], providers={
        **minimal()["providers"],
        "safety": [{"provider_id": "guard", "provider_type": "inline::llama-guard", "config": {"model": model}}]})


def test_a_llama_guard_shield_names_an_llm_of_the_graph():
    assert parse_run_config(guard_config("m"), "t").providers["safety"][0].config == {"model": "m"}
    with pytest.raises(ConfigError, match="providers.safety.0.config.model: 'nope' is not an llm under "
                                          "registered_resources.models \\(known: m\\)"):
        parse_run_config(guard_config("nope"), "t")


def test_a_tool_group_names_a_tool_runtime_provider_and_an_http_endpoint():
    data = minimal(apis=["inference", "models", "tool_runtime"], providers={
        **minimal()["providers"],
        "tool_runtime": [{"provider_id": "mcp", "provider_type": "remote::model-context-protocol"}]})
    data["registered_resources"]["tool_groups"] = [{"toolgroup_id": "mcp::x", "provider_id": "remote",
                                                    "mcp_endpoint": {"uri": "http://127.0.0.1:1/mcp"}}]
    with pytest.raises(ConfigError, match="tool_groups.0.provider_id: no tool_runtime provider 'remote'"):
        parse_run_config(data, "t")
    data["registered_resources"]["tool_groups"] = [{"toolgroup_id": "mcp::x", "provider_id": "mcp",
                                                    "mcp_endpoint": {"uri": "ftp://x"}}]
    with pytest.raises(ConfigError, match="tool_groups.0.mcp_endpoint.uri"):
        parse_run_config(data, "t")


def test_a_shield_must_name_a_safety_provider():
    data = minimal()
    data["registered_resources"] = {"shields": [{"shield_id": "guard", "provider_id": "nowhere"}]}
    with pytest.raises(ConfigError, match="registered_resources.shields.0.provider_id: no safety provider 'nowhere'"):
        parse_run_config(data, "t")


def test_the_prompts_api_needs_a_prompts_store_of_the_sql_family():
    data = minimal()
    data["apis"].append("prompts")
    with pytest.raises(ConfigError, match="storage.stores.prompts"):
        parse_run_config(data, "t")


def test_static_tokens_come_from_the_environment():
    data = minimal(server={"auth": {"provider_config": {"type": "static_tokens", "tokens": {
        "${env.TEAM_TOKEN}": {"principal": "ci", "attributes": {"teams": "ml"}}}}}})
    config = parse_run_config(data, "t", {"TEAM_TOKEN": "s3cret"})
    assert config.server.auth.provider_config.tokens["s3cret"].attributes == {"teams": ["ml"]}


def test_auth_config_errors_name_the_key():
    data = minimal(server={"auth": {"provider_config": {"type": "oauth2_token", "jwks": {"uri": "http://idp/jwks"}}}})
    with pytest.raises(ConfigError) as err:
        parse_run_config(data, "t")
    assert "server.auth.provider_config.audience" in str(err.value)
    data = minimal(server={"auth": {"provider_config": {"type": "kerberos"}}})
    with pytest.raises(ConfigError, match="server.auth.provider_config"):
        parse_run_config(data, "t")


def test_a_bad_access_rule_names_its_position_and_the_problem():
    data = minimal(server={"access_policy": [
        {"permit": {"actions": ["read"]}, "when": "user is owner"},
        {"permit": {"actions": ["read"]}, "when": "user is very important"},
    ]})
    with pytest.raises(ConfigError) as err:
        parse_run_config(data, "t")
    assert "server.access_policy.1" in str(err.value) and "unknown condition" in str(err.value)


def test_inference_store_must_be_a_table_with_queue_settings():
    data = minimal()
    data["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": "/tmp/y.db"}
    data["storage"]["stores"]["inference"] = {"backend": "kv", "namespace": "inference"}
    with pytest.raises(ConfigError, match="storage.stores.inference needs a sql backend"):
        parse_run_config(data, "t")
    data["storage"]["stores"]["inference"] = {"backend": "sql", "table_name": "chat", "num_writers": 0}
    with pytest.raises(ConfigError, match="storage.stores.inference.num_writers"):
        parse_run_config(data, "t")


def files_config(**deployment):
    data = minimal(apis=["inference", "models", "files"])
    data["providers"]["files"] = [{"provider_id": "fs", "provider_type": "inline::localfs",
                                   "config": {"storage_dir": "/tmp/raystack-files"}, "deployment": deployment}]
    data["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": "/tmp/y.db"}
    data["storage"]["stores"]["files"] = {"backend": "sql", "table_name": "files"}
    return data


def test_a_single_replica_provider_refuses_more_replicas():
    assert parse_run_config(files_config(), "t").providers["files"][0].provider_id == "fs"
    with pytest.raises(ConfigError, match=r"providers.files.0.deployment: inline::localfs runs as one replica.*not 3"):
        parse_run_config(files_config(autoscaling_config={"min_replicas": 1, "max_replicas": 3}), "t")
    with pytest.raises(ConfigError, match="not 2"):
        parse_run_config(files_config(num_replicas=2), "t")


def test_only_thin_remote_clients_run_in_the_ingress():
    with pytest.raises(ConfigError, match=r"providers.files.0.deployment.colocate: inline::localfs is not a thin remote "
                                          r"client; only remote::openai, remote::tavily-search run in the ingress"):
        parse_run_config(files_config(colocate="ingress"), "t")
    with pytest.raises(ConfigError, match="colocate"):
        parse_run_config(files_config(colocate="agents"), "t")


def test_a_files_provider_needs_a_files_store():
    data = files_config()
    del data["storage"]["stores"]["files"]
    with pytest.raises(ConfigError, match="storage.stores.files"):
        parse_run_config(data, "t")


def vector_io_config(provider: dict) -> dict:
    data = files_config()
    data["apis"].append("vector_io")
    data["providers"]["vector_io"] = [provider]
    data["storage"]["stores"]["vector_stores"] = {"backend": "sql", "table_name": "vector_stores"}
    return data


def test_inline_milvus_is_pinned_to_one_replica_and_its_path_checked():
    milvus = {"provider_id": "milvus", "provider_type": "inline::milvus", "config": {"db_path": "/tmp/vectors.db"},
              "deployment": {"autoscaling_config": {"max_replicas": 2}}}
    with pytest.raises(ConfigError, match="DataDirLockedError"):
        parse_run_config(vector_io_config(milvus), "t")
    milvus["deployment"] = {}
    assert parse_run_config(vector_io_config(milvus), "t").providers["vector_io"][0].provider_type == "inline::milvus"
    milvus["config"]["db_path"] = "/tmp/vectors"
    with pytest.raises(ConfigError, match="providers.vector_io.0.config.db_path"):
        parse_run_config(vector_io_config(milvus), "t")
    remote = {"provider_id": "milvus", "provider_type": "remote::milvus", "config": {"uri": "http://milvus:19530"},
              "deployment": {"num_replicas": 3}}
    assert parse_run_config(vector_io_config(remote), "t").providers["vector_io"][0].deployment.num_replicas == 3


def test_vector_stores_need_files_and_their_store():
    data = vector_io_config({"provider_id": "milvus", "provider_type": "remote::milvus", "config": {"uri": "http://m:19530"}})
    del data["storage"]["stores"]["vector_stores"]
    with pytest.raises(ConfigError, match="storage.stores.vector_stores"):
        parse_run_config(data, "t")
    data = vector_io_config({"provider_id": "milvus", "provider_type": "remote::milvus", "config": {"uri": "http://m:19530"}})
    del data["providers"]["files"]
    with pytest.raises(ConfigError, match="providers.files"):
        parse_run_config(data, "t")


def test_responses_need_one_agents_provider():
    data = minimal(apis=["inference", "models", "responses"])
    data["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": "/tmp/x-sql.db"}
    data["storage"]["stores"]["responses"] = {"backend": "sql", "table_name": "responses"}
    with pytest.raises(ConfigError, match="providers.agents: the responses api runs its turns in one agents provider"):
        parse_run_config(data, "t")
    data["apis"].append("agents")
    data["providers"]["agents"] = [{"provider_id": "builtin", "provider_type": "inline::builtin", "config": {"max_steps": 3}}]
    assert parse_run_config(data, "t").providers["agents"][0].config == {"max_steps": 3}


def with_post_training(datasetio: bool = True, jobs: str | None = "sql") -> dict:
    config = minimal(apis=["inference", "models", "datasetio", "post_training"])
    config["providers"]["post_training"] = [{"provider_id": "torchtune", "provider_type": "inline::torchtune",
                                             "config": {"artifacts_dir": "/tmp/ckpt"}}]
    if datasetio:
        config["providers"]["datasetio"] = [{"provider_id": "parquet", "provider_type": "inline::parquet",
                                             "config": {"storage_dir": "/tmp/ds"}}]
    config["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": "/tmp/x-sql.db"}
    if jobs == "sql":
        config["storage"]["stores"]["jobs"] = {"backend": "sql", "table_name": "jobs"}
    elif jobs == "kv":
        config["storage"]["stores"]["jobs"] = {"backend": "kv", "namespace": "jobs"}
    return config


def test_post_training_validates_with_datasets_and_a_jobs_table():
    config = parse_run_config(with_post_training(), "run.yaml")
    assert config.providers["post_training"][0].provider_type == "inline::torchtune"


@pytest.mark.parametrize("changes, message", [
    ({"datasetio": False}, "providers.datasetio: post-training jobs read datasets"),
    ({"jobs": None}, "storage.stores.jobs: post-training jobs are recorded in a 'jobs' store"),
    ({"jobs": "kv"}, "storage.stores.jobs needs a sql backend"),
])
def test_post_training_without_what_it_needs_is_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_run_config(with_post_training(**changes), "run.yaml")


def test_a_training_worker_group_config_typo_is_named():
    config = with_post_training()
    config["providers"]["post_training"][0]["config"]["num_worker"] = 2
    with pytest.raises(ConfigError, match="providers.post_training.0.config.num_worker"):
        parse_run_config(config, "run.yaml")


@pytest.mark.parametrize("allowed", ["~", "/", "~/.local/share/raystack/starter/datasets/imports"])
def test_dataset_import_folders_may_not_overlap_a_state_folder(allowed):
    data = yaml.safe_load(STARTER.read_text())
    data["providers"]["datasetio"][0]["config"]["allowed_paths"] = ["/srv/imports", allowed]
    with pytest.raises(ConfigError, match=r"providers.datasetio.0.config.allowed_paths.1: .* overlaps the state folder"):
        parse_run_config(data, "starter", environ={})
    data["providers"]["datasetio"][0]["config"]["allowed_paths"] = ["/srv/imports"]
    assert parse_run_config(data, "starter", environ={}).providers["datasetio"][0].config["allowed_paths"] == ["/srv/imports"]


def test_the_starter_imports_no_server_path_and_listens_on_loopback_without_auth():
    config = load_run_config(STARTER, environ={})
    assert config.providers["datasetio"][0].config.get("allowed_paths", []) == []
    assert (config.server.host, config.server.auth) == ("127.0.0.1", None)
    server = yaml.safe_load(STARTER.read_text())["server"]
    with pytest.raises(ConfigError, match="server.auth: the server would listen on 0.0.0.0"):
        parse_run_config({**yaml.safe_load(STARTER.read_text()), "server": {**server, "host": "0.0.0.0"}}, "starter",
                         environ={})
