#!/bin/busybox sh
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# What the e2ev2 VM's /init (internal/testing/qemuvm/init.sh) runs: the
# in-VM tests of the static e2ev2 test binary, E2EV2_RUN from the kernel's
# command line selecting them.
OOMSIGHT_E2E_VM=1 /bin/e2ev2.test -test.v -test.count=1 -test.run "${E2EV2_RUN:-^TestVM}" -test.timeout 210s
