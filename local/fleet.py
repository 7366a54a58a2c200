"""A fleet: one copy of our server for one endpoint configuration, with the local observer."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.settings import ServerSettings
from local.capture import (
    ENV_CAPTURE_CONFIG,
    ENV_ENDPOINT_CONFIG,
    ENV_FAULT_PERCENT,
    ENV_READY_DIR,
    ENV_ROUTING_FILE,
    ENV_VARIANT,
    OBSERVER_FACTORY,
)
from local.endpoint import free_port, server_process
from local.rollout import ServedConfig
from local.routing import RoutingTable

REPOSITORY = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class FleetOptions:
    """What every fleet of one hosting shares."""

    endpoint_name: str
    workers: int
    aws_environment: Mapping[str, str]
    busy_poll_us: int = 0
    # A command prefix (the benchmark pins fleets with taskset).
    launcher: Sequence[str] = ()


class Fleet:
    """One running copy of the server for one endpoint configuration."""

    def __init__(
        self,
        config: ServedConfig,
        port: int,
        routing: RoutingTable,
        stack: contextlib.ExitStack,
        listener: socket.socket | None,
    ) -> None:
        self.config = config
        self.port = port
        self.routing = routing
        self.listener = listener
        self._stack = stack

    def stop(self) -> None:
        """SIGTERM (the server drains), then release the listener and the routing table."""
        self._stack.close()
        if self.listener is not None:
            self.listener.close()
        self.routing.close()


def start_fleet(
    config: ServedConfig,
    directory: Path,
    options: FleetOptions,
    *,
    listener: socket.socket | None = None,
    fault_percent: float = 0.0,
) -> Fleet:
    """Start ``config``'s fleet, on ``listener`` (inherited) or a free private port; when ready.

    ``directory`` gets the fleet's log, routing table and the workers' ready marks.
    """
    ready_dir = directory / "ready"
    ready_dir.mkdir(parents=True)
    routing = RoutingTable(directory / "routing", writable=True)
    port = listener.getsockname()[1] if listener is not None else free_port()
    settings = ServerSettings(
        model_dir=config.model_dir, host=HOST, port=port, workers=options.workers,
        endpoint_name=options.endpoint_name, invocation_observer=OBSERVER_FACTORY,
        listen_fd=None if listener is None else listener.fileno(),
        busy_poll_us=options.busy_poll_us,
    )  # fmt: skip
    environment = {
        **os.environ, **options.aws_environment, **settings.to_environment(),
        ENV_ENDPOINT_CONFIG: config.endpoint_config_name,
        ENV_VARIANT: config.variant_name,
        ENV_CAPTURE_CONFIG: json.dumps(config.data_capture) if config.data_capture else "",
        ENV_ROUTING_FILE: str(routing.path),
        ENV_FAULT_PERCENT: repr(float(fault_percent)),
        ENV_READY_DIR: str(ready_dir),
        "PYTHONPATH": str(REPOSITORY),
    }  # fmt: skip

    def ready() -> bool:
        # A shared port cannot tell who answers /ping: each worker marks its start.
        return sum(1 for _ in ready_dir.iterdir()) >= options.workers

    stack = contextlib.ExitStack()
    try:
        log = stack.enter_context((directory / "server.log").open("wb"))
        stack.enter_context(
            server_process(
                [*options.launcher, sys.executable, "-m", "inference.server"], port,
                env=environment, log=log, cwd=REPOSITORY,
                pass_fds=() if listener is None else (listener.fileno(),),
                ready=ready if listener is not None else None,
            )
        )  # fmt: skip
    except BaseException:
        stack.close()
        routing.close()
        raise
    return Fleet(config, port, routing, stack, listener)
