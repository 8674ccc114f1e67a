# SPDX-License-Identifier: BSD-3-Clause
# Shell helpers shared by scripts/*: where the tree is, how to talk, and what
# a machine needs. Sourced, never run.

MX_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages: to build, and to run the tests.
MX_BUILD_PKGS=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev libdpdk-dev dpdk dpdk-dev libcyaml-dev
	libyaml-dev libcriterion-dev liburing-dev libjemalloc-dev libssl-dev libjansson-dev
	libmicrohttpd-dev libcrypt-dev) # libcrypt-dev: libxcrypt, crypt(3) hashes for AUTH
MX_TEST_PKGS=(python3-pytest python3-scapy python3-aiosmtpd iproute2 iputils-ping ethtool procps swaks postfix
	prometheus libnet-ssleay-perl testssl.sh) # swaks --tls needs Net::SSLeay

# Debian's interpreter: the python3 first on PATH may be a build without Debian's packages.
MX_PYTHON=/usr/bin/python3

mx_say() { printf '%s: %s\n' "${0##*/}" "$*"; }
mx_die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

mx_need_root() {
	[[ $(id -u) -eq 0 ]] || mx_die "run me as root (sudo $0 $*): I install packages, reserve hugepages and make network namespaces"
}
