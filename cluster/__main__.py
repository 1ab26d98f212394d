"""Generate cluster files from a run config.

    python -m cluster write                           # regenerate the committed files in cluster/
    python -m cluster serve-config run.yaml > serve.yaml
    python -m cluster rayservice run.yaml --image registry/raystack:1 > rayservice.yaml
    python -m cluster env run.yaml > raystack.env     # for the cluster launcher's nodes
    python -m cluster clean                           # after `ray stop`: end what it left running
"""

import argparse
import sys

from cluster.generate import CLUSTER_DIR, dump, env_file, generated_files, gpus_per_engine, rayservice, serve_config
from graphs.leftovers import end_stale_processes
from graphs.serve_env import haproxy_folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write", help="regenerate the committed files in cluster/")
    commands.add_parser("clean", help="end the HAProxy and vLLM engine processes a stopped Ray left running")
    for name in ("serve-config", "rayservice", "env"):
        command = commands.add_parser(name)
        command.add_argument("config", help="run config path, or a shipped config's name (starter, gpu)")
        if name == "rayservice":
            command.add_argument("--image", default="raystack:latest", help="an image with raystack installed")
            command.add_argument("--max-gpu-workers", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "write":
        for name, text in generated_files().items():
            (CLUSTER_DIR / name).write_text(text)
            print(f"wrote cluster/{name}", file=sys.stderr)
    elif args.command == "clean":
        for line in end_stale_processes(haproxy_folders()) or ["nothing a stopped Ray left is running"]:
            print(line)
    elif args.command == "serve-config":
        sys.stdout.write(dump(serve_config(args.config)))
    elif args.command == "rayservice":
        manifest = rayservice(args.config, args.image, gpus_per_engine(args.config), args.max_gpu_workers)
        sys.stdout.write(dump(manifest))
    else:
        sys.stdout.write(env_file(args.config))


if __name__ == "__main__":
    main()
