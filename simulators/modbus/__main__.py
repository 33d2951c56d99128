"""`python -m simulators.modbus`: the same as `campus-edge simulate modbus`."""

from simulators.modbus.cli import main

raise SystemExit(main())
