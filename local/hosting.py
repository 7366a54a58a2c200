"""The local hosting service: one endpoint served by our server, updated blue/green like SageMaker.

It reads what to serve from the embedded SageMaker API's records (endpoint configuration ->
model -> model package -> model data in the embedded S3), runs fleets of our server with the
local observer (local.capture: data capture, metrics, routing), and takes the UpdateEndpoint
request that the emulator lacks: new fleet, canary share, bake on the rollback alarms (our
evaluator, local.alarms), then rollback or takeover, mirrored into the emulator's records.

Routing: the public port belongs to one fleet at a time (no hop in the steady state). During an
update the new configuration gets two fleets, started together: a canary on a private port, to
which the old fleet's workers forward the canary share per request (local.routing), and its twin
on a second SO_REUSEPORT listener of the public port, steered away until the takeover; then new
connections go to the twin and the old fleet drains (every accepted request is answered).
Rollback: the forwarding stops and both new fleets drain.

HostingError (from local.rollout) is what a request the local hosting cannot take raises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.protocol import bind_listener
from local.alarms import ALARM, AlarmEvaluation, evaluate, put_alarms
from local.capture import DEFAULT_FLUSH_SECONDS
from local.embedded_aws import EmbeddedAws
from local.endpoint import free_port
from local.fleet import HOST, Fleet, FleetOptions, start_fleet
from local.market_data import LOCAL_NAMES
from local.rollout import (
    HostingError,
    ServedConfig,
    parse_rollout,
    required,
    resolve_config,
)
from local.routing import steer
from stages.names import ResourceNames
from stages.serving import AlarmSpec, BusinessHours, ServingConfig, endpoint_alarms

# The local stage's serving: a canary of 20 %, a bake of seconds, alarms on 1-second periods.
LOCAL_SERVING = ServingConfig(
    traffic_routing="CANARY",
    canary_percent=20,
    bake_seconds=4,
    termination_wait_seconds=0,
    alarm_period_seconds=1,
    alarm_evaluation_periods=3,
    alarm_datapoints_to_alarm=2,
)
# A worker's metrics reach the embedded CloudWatch up to one flush after the period ended.
SETTLE_SECONDS = DEFAULT_FLUSH_SECONDS + 1.0
SUCCEEDED, ROLLED_BACK = "Succeeded", "RolledBack"

__all__ = ["LOCAL_SERVING", "ROLLED_BACK", "SUCCEEDED", "HostingError", "LocalHosting",
           "UpdateOutcome"]  # fmt: skip

logger = logging.getLogger("freight.local")


@dataclass(frozen=True)
class UpdateOutcome:
    """How an update ended: ``Succeeded`` (new fleet serves) or ``RolledBack`` (old one does)."""

    endpoint_name: str
    from_config: str
    to_config: str
    status: str
    alarm_name: str | None
    reason: str
    evaluations: tuple[AlarmEvaluation, ...]

    @property
    def rolled_back(self) -> bool:
        """True when an alarm rolled the update back."""
        return self.status == ROLLED_BACK


class LocalHosting:
    """The local hosting service of one endpoint on ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        aws: EmbeddedAws,
        *,
        workdir: Path,
        serving: ServingConfig = LOCAL_SERVING,
        names: ResourceNames = LOCAL_NAMES,
        workers: int = 1,
        port: int | None = None,
        busy_poll_us: int = 0,
        launcher: Sequence[str] = (),
        business_hours: BusinessHours | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if aws.endpoint_url is None:
            raise HostingError(
                "the local hosting needs the embedded AWS as a server (threaded_server=True): "
                "its fleets are other processes"
            )
        self.aws = aws
        self.workdir = workdir
        self.serving = serving
        self.names = names
        self.workers = workers
        self.port = port or free_port()
        # Several fleets and their callers share the laptop's cores: no busy polling by default.
        self.busy_poll_us = busy_poll_us
        # A command prefix for the fleets (the benchmark pins them with taskset).
        self.launcher = tuple(launcher)
        self.business_hours = business_hours or serving.business_hours
        self.endpoint_name: str | None = None
        self._sleep = sleep
        self._clock = clock
        self._sagemaker = aws.client("sagemaker")
        self._s3 = aws.client("s3")
        self._cloudwatch = aws.client("cloudwatch")
        self._fleet: Fleet | None = None
        self._numbers = itertools.count(1)

    @property
    def url(self) -> str:
        """The endpoint URL for ``boto3.client("sagemaker-runtime", endpoint_url=...)``."""
        return f"http://{HOST}:{self.port}"

    @property
    def endpoint_config_name(self) -> str | None:
        """The endpoint configuration being served (None before create_endpoint)."""
        return None if self._fleet is None else self._fleet.config.endpoint_config_name

    def __enter__(self) -> LocalHosting:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the fleet (a drain); the emulator's records stay."""
        if self._fleet is not None:
            self._fleet.stop()
            self._fleet = None

    def create_endpoint(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """CreateEndpoint: serve the configuration on the public port; the emulator's record."""
        name = required(request, "EndpointName")
        config_name = required(request, "EndpointConfigName")
        if self._fleet is not None:
            raise HostingError(f"this local hosting already serves endpoint {self.endpoint_name}")
        self.endpoint_name = name
        config = resolve_config(self._sagemaker, self._s3, config_name, self.workdir)
        listener = bind_listener(HOST, self.port, reuse_port=True)
        try:
            self._fleet = self._start_fleet(config, listener=listener)
        except BaseException:
            listener.close()
            raise
        return self._mirror(request)

    def update_endpoint(
        self, request: Mapping[str, Any], *, fault_percent: float = 0.0
    ) -> UpdateOutcome:
        """UpdateEndpoint, blue/green: canary, bake on the rollback alarms, rollback or takeover.

        Blocks until the update ended. ``fault_percent`` (a drill, local only) makes the new
        fleet answer that share of its requests with a 500.
        """
        name = required(request, "EndpointName")
        config_name = required(request, "EndpointConfigName")
        old = self._fleet
        if old is None or name != self.endpoint_name:
            raise HostingError(f"endpoint {name!r} is not served here; create_endpoint first")
        if config_name == old.config.endpoint_config_name:
            raise HostingError(f"endpoint {name} already serves {config_name}")
        new = resolve_config(self._sagemaker, self._s3, config_name, self.workdir)
        rollout = parse_rollout(request.get("DeploymentConfig"), new.instance_count)
        specs = self._rollback_specs(rollout.alarm_names, config_name)
        canary, public = self._start_green(old, new, fault_percent)
        fields = {
            "endpoint_config": config_name,
            "canary_port": canary.port,
            "canary_percent": rollout.canary_percent,
            "bake_seconds": rollout.wait_seconds,
        }
        logger.info("update: new fleets started", extra={"fields": fields})
        try:
            put_alarms(self._cloudwatch, specs)
            self._evaluate(specs)
            old.routing.set(canary.port, rollout.canary_percent)
            fired, evaluations = self._bake(specs, rollout.wait_seconds)
        except BaseException:
            self._roll_back(old, canary, public)
            raise
        from_config = old.config.endpoint_config_name
        if fired is not None:
            self._roll_back(old, canary, public)
            return UpdateOutcome(name, from_config, config_name, ROLLED_BACK, fired.name,
                                 fired.reason, evaluations)  # fmt: skip
        self._take_over(old, canary, public)
        self._mirror({"EndpointName": name, "EndpointConfigName": config_name})
        return UpdateOutcome(name, from_config, config_name, SUCCEEDED, None,
                             "no rollback alarm fired during the bake", evaluations)  # fmt: skip

    def _start_green(
        self, old: Fleet, new: ServedConfig, fault_percent: float
    ) -> tuple[Fleet, Fleet]:
        """The new configuration's fleets, started together: the canary and the public one.

        The canary (a private port) takes the forwarded share; its twin listens on the public
        port (a second SO_REUSEPORT listener) but gets no connection before the takeover: the
        group's only member so far, the old listener, is index 0, and new connections are
        steered there.
        """
        assert old.listener is not None
        steer(old.listener, 0)
        listener = bind_listener(HOST, self.port, reuse_port=True)
        with ThreadPoolExecutor(max_workers=1) as pool:
            starting = pool.submit(self._start_fleet, new, listener=listener)
            try:
                canary = self._start_fleet(new, fault_percent=fault_percent)
            except BaseException:
                with contextlib.suppress(Exception):
                    starting.result().stop()
                listener.close()
                raise
            try:
                public = starting.result()
            except BaseException:
                canary.stop()
                listener.close()
                raise
        return canary, public

    def _roll_back(self, old: Fleet, canary: Fleet, public: Fleet) -> None:
        """Traffic back to the old fleet; the new fleets drain and stop."""
        old.routing.set(0, 0)
        canary.stop()
        # Its listener leaves the group: the old one is again its only member.
        public.stop()

    def _rollback_specs(self, alarm_names: Sequence[str], config_name: str) -> list[AlarmSpec]:
        assert self.endpoint_name is not None
        known = {
            spec.name: spec
            for spec in endpoint_alarms(
                self.names.alarm_prefix, self.endpoint_name, self.serving, config_name
            )
        }
        unknown = [name for name in alarm_names if name not in known]
        if unknown:
            raise HostingError(
                f"DeploymentConfig.AutoRollbackConfiguration.Alarms: {', '.join(unknown)} "
                f"not among the endpoint's alarms ({', '.join(known)})"
            )
        return [known[name] for name in alarm_names]

    def _evaluate(self, specs: Sequence[AlarmSpec]) -> list[AlarmEvaluation]:
        # Periods that ended less than a flush ago may still miss datums.
        now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=SETTLE_SECONDS)
        return [
            evaluate(self._cloudwatch, spec, now, business_hours=self.business_hours)
            for spec in specs
        ]

    def _bake(
        self, specs: Sequence[AlarmSpec], wait_seconds: int
    ) -> tuple[AlarmEvaluation | None, tuple[AlarmEvaluation, ...]]:
        """Evaluate every period until the bake is over; the first alarm that fired, if any."""
        step = min((spec.period_seconds for spec in specs), default=1)
        deadline = self._clock() + wait_seconds
        history: list[AlarmEvaluation] = []
        finishing = False
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                if finishing or not specs:
                    return None, tuple(history)
                # The bake's last periods are published up to a flush later: look once more.
                self._sleep(SETTLE_SECONDS)
                finishing = True
            else:
                self._sleep(min(step, remaining))
            evaluations = self._evaluate(specs)
            logger.info("bake: alarms evaluated", extra={"fields": {
                e.name: f"{e.state} {e.values}" for e in evaluations}})  # fmt: skip
            history += evaluations
            fired = next((e for e in evaluations if e.state == ALARM), None)
            if fired is not None:
                return fired, tuple(history)

    def _take_over(self, old: Fleet, canary: Fleet, public: Fleet) -> None:
        """The new fleet takes the public port; the old one drains and stops, then the canary."""
        assert public.listener is not None
        # The new listener joined the group second: index 1.
        steer(public.listener, 1)
        logger.info("takeover: new connections go to the new fleet")
        self._fleet = public
        # The drain answers every accepted request (forwarded ones included); when the old
        # listener closes, the kernel's hash takes over again, over the one listener left.
        old.stop()
        logger.info("takeover: the old fleet drained")
        canary.stop()

    def _start_fleet(
        self,
        config: ServedConfig,
        *,
        listener: socket.socket | None = None,
        fault_percent: float = 0.0,
    ) -> Fleet:
        assert self.endpoint_name is not None
        number = next(self._numbers)
        return start_fleet(
            config, self.workdir / "fleets" / f"{number:02d}-{config.endpoint_config_name}",
            FleetOptions(self.endpoint_name, self.workers, self.aws.environment(),
                         self.busy_poll_us, self.launcher),
            listener=listener, fault_percent=fault_percent,
        )  # fmt: skip

    def _mirror(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The emulator's record: moto has no UpdateEndpoint; CreateEndpoint overwrites."""
        arguments = {"EndpointName": request["EndpointName"],
                     "EndpointConfigName": request["EndpointConfigName"]}  # fmt: skip
        if request.get("Tags"):
            arguments["Tags"] = request["Tags"]
        created = self._sagemaker.create_endpoint(**arguments)
        return {"EndpointArn": created["EndpointArn"]}
