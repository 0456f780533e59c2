"""`make run` starts every process on fixed ports: no two may share one (the notifier and the
console once both took 9465 for metrics, and the console refused to start)."""

from legation_devstack.console import console_ports
from legation_devstack.stack import FIXED_PORTS


def test_the_fixed_ports_of_make_run_are_all_different() -> None:
    console = console_ports(fixed=True)
    ports = [port for pair in FIXED_PORTS.values() for port in pair]
    ports += [console.console, console.metrics, console.oidc]
    assert len(ports) == len(set(ports)), sorted(ports)
