"""The building broker's secure configuration against a real Mosquitto.

The broker runs deploy/mosquitto/campus-edge.conf and secure/campus-edge.secure.conf as they
are installed (conf.d, in that order), with ports and paths moved to loopback and tmp, and the
credentials made by secure/make-credentials.sh. "Not delivered" is shown without sleeping: a
client's messages arrive in order, so once a later allowed message has arrived, an earlier
forbidden one would have arrived before it.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.net import free_ports, wait_for_port

MOSQUITTO = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
SECURE = MOSQUITTO / "secure"
B = "b07"


@dataclass
class Broker:
    port: int
    tls_port: int
    lan_port: int
    passwords: dict[str, str]
    ca: Path


def render_configs(tmp: Path, port: int, lan_port: int, tls_port: int) -> Path:
    conf_d = tmp / "conf.d"
    conf_d.mkdir()
    base = (MOSQUITTO / "campus-edge.conf").read_text()
    assert "\nmax_queued_messages 0\n" in base, "the broker must not drop queued QoS 1 messages"
    base = base.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    base = base.replace("persistence_location /var/lib/mosquitto/", f"persistence_location {tmp}/")
    (conf_d / "campus-edge.conf").write_text(base)
    secure = (SECURE / "campus-edge.secure.conf").read_text()
    lines = []
    in_tls = False
    for raw in secure.splitlines():
        line = raw
        if "optional TLS listener" in line:
            in_tls = "(begin)" in line
        elif (
            in_tls
            and line.startswith("# ")
            and line[2:].split(" ")[0]
            in (
                "listener",
                "certfile",
                "keyfile",
                "tls_version",
            )
        ):
            line = line[2:]
        lines.append(line)
    secure = "\n".join(lines) + "\n"
    secure = secure.replace("/etc/mosquitto/campus-edge/", f"{tmp}/auth/")
    secure = secure.replace("listener 1883 192.0.2.10", f"listener {lan_port} 127.0.0.1")
    secure = secure.replace("listener 8883 192.0.2.10", f"listener {tls_port} 127.0.0.1")
    assert f"listener {tls_port} 127.0.0.1" in secure
    (conf_d / "campus-edge.secure.conf").write_text(secure)
    main = tmp / "mosquitto.conf"
    # pytest's tmp directories are private: keep the broker as the test's user, not `mosquitto`
    main.write_text(f"user {getpass.getuser()}\ninclude_dir {conf_d}\n")
    return main


def make_tls(tls: Path) -> Path:
    tls.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(tls / "server.key"),
            "-out",
            str(tls / "server.crt"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return tls / "server.crt"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    for tool in ("mosquitto", "mosquitto_passwd", "mosquitto_pub", "mosquitto_sub", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing: apt-get install mosquitto mosquitto-clients openssl")
    subprocess.run(
        [
            str(SECURE / "make-credentials.sh"),
            B,
            str(tmp_path / "auth"),
            "gateway:gateway",
            "gate:gate-in-1",
            "gate:gate-in-2",
            "terminal:term-1",
            "viewer:desk",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    passwords = dict(
        line.split(":", 1)
        for line in (tmp_path / "auth" / "credentials.txt").read_text().splitlines()
    )
    ca = make_tls(tmp_path / "auth" / "tls")
    port, lan_port, tls_port = free_ports(3)
    conf = render_configs(tmp_path, port, lan_port, tls_port)
    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for p in (port, lan_port, tls_port):
            wait_for_port(p)
        yield Broker(port, tls_port, lan_port, passwords, ca)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def client_args(b: Broker, user: str, *, port: int | None = None) -> list[str]:
    return ["-V", "5", "-h", "127.0.0.1", "-p", str(port or b.lan_port), "-u", user,
            "-P", b.passwords[user]]  # fmt: skip


def pub(b: Broker, user: str, topic: str, msg: str, **kw: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mosquitto_pub", *client_args(b, user, **kw), "-q", "1", "-t", topic, "-m", msg],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def sub(b: Broker, user: str, topics: list[str], count: int) -> subprocess.Popen[str]:
    args = ["mosquitto_sub", *client_args(b, user), "-q", "1", "-v", "-C", str(count), "-W", "20"]
    for t in topics:
        args += ["-t", t]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_subscribed(b: Broker, proc: subprocess.Popen[str], user: str, probe_topic: str) -> None:
    """Publish probes until the subscriber's first message arrives (it is then subscribed)."""
    assert proc.stdout is not None
    # mosquitto_sub prints nothing before it is subscribed, so re-send the probe until one lands
    for _ in range(200):
        pub(b, user, probe_topic, "probe")
        if proc.poll() is not None or _readable(proc):
            return
    raise TimeoutError("subscriber never got the probe")


def _readable(proc: subprocess.Popen[str]) -> bool:
    import select  # noqa: PLC0415

    assert proc.stdout is not None
    return bool(select.select([proc.stdout], [], [], 0.05)[0])


def test_anonymous_and_wrong_passwords_are_refused(broker: Broker) -> None:
    anon = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "x", "-m", "y"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert anon.returncode != 0
    assert "not authorised" in anon.stderr.lower()
    wrong = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", str(broker.lan_port),
         "-u", "gate-in-1", "-P", "wrong", "-t", "x", "-m", "y"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_a_gate_publishes_only_its_own_topics(broker: Broker) -> None:
    own = f"campus/{B}/gate/gate-in-1/event"
    other = f"campus/{B}/gate/gate-in-2/event"
    gateway = sub(broker, "gateway", [f"campus/{B}/#"], 2)
    wait_subscribed(broker, gateway, "gate-in-1", f"campus/{B}/gate/gate-in-1/status")
    forged = pub(broker, "gate-in-1", other, "forged")
    assert "not authorized" in forged.stderr.lower()  # MQTT 5 PUBACK: not authorized
    assert pub(broker, "gate-in-1", f"campus/{B}/terminal/term-1/txn", "forged").stderr
    assert pub(broker, "gate-in-1", own, "genuine").returncode == 0
    out, _ = gateway.communicate(timeout=30)
    received = out.splitlines()
    assert received[-1] == f"{own} genuine", received
    assert all("forged" not in line for line in received)


def test_a_gate_cannot_read_alerts(broker: Broker) -> None:
    cmd = f"campus/{B}/gate/gate-in-1/cmd/open"
    gate = sub(broker, "gate-in-1", [f"campus/{B}/alerts/#", f"campus/{B}/gate/gate-in-1/cmd/#"], 2)
    wait_subscribed(broker, gate, "gateway", f"campus/{B}/gate/gate-in-1/cmd/probe")
    assert pub(broker, "gateway", f"campus/{B}/alerts/a-1", "secret alert").returncode == 0
    assert pub(broker, "gateway", cmd, "open").returncode == 0
    out, _ = gate.communicate(timeout=30)
    received = out.splitlines()
    assert received[-1] == f"{cmd} open", received
    assert all("alert" not in line for line in received)
    # while a viewer does read them
    desk = sub(broker, "desk", [f"campus/{B}/alerts/#"], 1)
    wait_subscribed(broker, desk, "gateway", f"campus/{B}/alerts/probe")
    out, _ = desk.communicate(timeout=30)
    assert out.startswith(f"campus/{B}/alerts/")


def test_tls_listener_takes_a_verified_connection(broker: Broker) -> None:
    base = client_args(broker, "gate-in-1", port=broker.tls_port)
    ok = subprocess.run(
        ["mosquitto_pub", *base, "--cafile", str(broker.ca), "-q", "1",
         "-t", f"campus/{B}/gate/gate-in-1/status", "-m", "tls"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    plain = pub(broker, "gate-in-1", f"campus/{B}/gate/gate-in-1/status", "x", port=broker.tls_port)
    assert plain.returncode != 0
