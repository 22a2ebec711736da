// CLinuxNet: the few Linux calls Swift cannot make directly.
//
// ioctl(2) is variadic and TUNSETIFF/SIOCBRADDIF are function-like macros, and the Glibc
// module is built without _GNU_SOURCE (no recvmmsg/sendmmsg). Every function returns
// 0 (or a non-negative value) on success and -errno on failure, so Swift maps errors
// to typed enums without reading the thread-local errno.
#ifndef CLINUXNET_H
#define CLINUXNET_H

#include <stdint.h>
#include <stddef.h>

#define IPOP_IFNAMSIZ 16

// ---- TUN/TAP -------------------------------------------------------------------------
// Opens /dev/net/tun and attaches a TAP named `name` (IFF_TAP|IFF_NO_PI). The kernel's
// final name is copied to `actual` (IPOP_IFNAMSIZ bytes). Returns the fd or -errno.
// -EBUSY: the name belongs to a TAP another process holds; -EINVAL: the name is a
// non-TAP interface; -ENOENT: no /dev/net/tun; -EPERM: not root / no CAP_NET_ADMIN.
int ipop_tap_open(const char *name, int multi_queue, int vnet_hdr, char *actual);
// On a TAP opened with vnet_hdr: announce (1) or withdraw (0) that we take unchecksummed frames
// and TCP segments up to 64 KB (TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN). Returns 0 or -errno.
int ipop_tap_set_offload(int fd, int csum_tso);
// One writev of two pieces (vnet header + frame). Returns bytes written or -errno.
long ipop_writev2(int fd, const void *a, size_t alen, const void *b, size_t blen);

// ---- interface configuration (ioctl on an AF_INET control socket) ----------------------
int ipop_if_index(const char *name);                 // ifindex or -ENODEV
int ipop_if_set_mtu(const char *name, int mtu);
int ipop_if_get_mtu(const char *name);
int ipop_if_set_mac(const char *name, const uint8_t mac[6]);
int ipop_if_get_mac(const char *name, uint8_t mac[6]);
int ipop_if_set_up(const char *name, int up);
int ipop_if_set_txqueuelen(const char *name, int qlen);
// addr is IPv4 in host byte order; prefix 0...32.
int ipop_if_set_ipv4(const char *name, uint32_t addr, int prefix);
// 1 if `name` is a Linux bridge (has /sys/class/net/NAME/bridge), 0 if not, -errno.
// Adds an IPv6 address (16 bytes, network order) with a prefix length.
int ipop_if_add_ipv6(const char *name, const uint8_t addr[16], int prefix);
int ipop_if_is_bridge(const char *name);
int ipop_bridge_add_if(const char *bridge, const char *ifname);
int ipop_bridge_del_if(const char *bridge, const char *ifname);

// ---- UDP ------------------------------------------------------------------------------
// A non-blocking IPv4 UDP socket bound to 0.0.0.0:port with large buffers. Returns fd.
int ipop_udp_open(uint16_t port);
int ipop_udp_local_port(int fd);
// addr host byte order. Returns bytes sent or -errno.
int ipop_udp_sendto(int fd, const void *buf, size_t len, uint32_t addr, uint16_t port);

// Batched receive/send (recvmmsg/sendmmsg) over caller-owned buffers.
typedef struct ipop_batch ipop_batch;
ipop_batch *ipop_batch_create(int count, int buffer_size);
void ipop_batch_destroy(ipop_batch *b);
uint8_t *ipop_batch_buffer(ipop_batch *b, int i);
int ipop_batch_capacity(const ipop_batch *b);
int ipop_batch_buffer_size(const ipop_batch *b);
// Received messages: length and source.
int ipop_batch_length(const ipop_batch *b, int i);
uint32_t ipop_batch_addr(const ipop_batch *b, int i);
uint16_t ipop_batch_port(const ipop_batch *b, int i);
// Messages to send: set length and destination per slot, then send `count` of them.
void ipop_batch_set(ipop_batch *b, int i, int length, uint32_t addr, uint16_t port);
// Receives up to capacity datagrams without blocking. Returns count (0 if none) or -errno.
int ipop_batch_recv(int fd, ipop_batch *b);
// Turns on UDP GRO (Linux 5.0+) for socket fd, received through this batch only: the kernel may
// then hand over several datagrams of one flow as one message (e.g. a peer's GSO run), which
// ipop_batch_recv cuts back into datagrams (one copy each into the slots). Segments that do not
// fit stay pending: while ipop_batch_pending is true, call ipop_batch_recv again without waiting
// for the socket to become readable. Returns 0 or -errno (then GRO stays off).
int ipop_batch_enable_gro(int fd, ipop_batch *b);
int ipop_batch_pending(const ipop_batch *b);
// Sends slots [0, count). Returns how many were sent or -errno. Runs of slots to one
// destination with one length (the last may be shorter) go out as one UDP GSO message
// (UDP_SEGMENT) unless GSO is off; a kernel that refuses GSO turns it off for this batch.
int ipop_batch_send(int fd, ipop_batch *b, int count);
// UDP GSO on sends: on (1) by default.
void ipop_batch_set_gso(ipop_batch *b, int on);
typedef struct {
    uint64_t messages;      // messages handed to the kernel (a GSO run is one)
    uint64_t datagrams;     // datagrams they carried
    uint64_t gso_refused;   // GSO runs the kernel refused (sent again without GSO)
    int gso_disabled;       // 1 once GSO was turned off after refusals
} ipop_batch_stats;
ipop_batch_stats ipop_batch_get_stats(const ipop_batch *b);

// ---- event loop plumbing ------------------------------------------------------------------
int ipop_epoll_create(void);
int ipop_epoll_add(int epfd, int fd, uint64_t token);   // EPOLLIN, level-triggered
int ipop_epoll_del(int epfd, int fd);
// Waits up to timeout_ms (-1 forever); fills tokens[0..n). Returns n, 0 on timeout, -errno.
int ipop_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);
// Blocks SIGINT/SIGTERM/SIGHUP for the calling thread (call before creating threads) and
// returns a signalfd that becomes readable when one arrives. Returns fd or -errno.
int ipop_signalfd_create(void);
// Reads one signal from the signalfd; returns its number, 0 if none, or -errno.
int ipop_signalfd_read(int fd);
int ipop_set_nonblocking(int fd);
// An eventfd that wakes the loop when another thread (signalling) has queued work.
int ipop_eventfd_create(void);
void ipop_eventfd_signal(int fd);
void ipop_eventfd_drain(int fd);
// Host IPv4 addresses of up, non-loopback interfaces: fills addrs/prefixes/names (16 bytes each),
// skipping the names in `skip` (count n_skip). Returns the count or -errno.
int ipop_local_ipv4(uint32_t *addrs, int *prefixes, char (*names)[16], int max);

// ---- small file-descriptor helpers -------------------------------------------------------
long ipop_read(int fd, void *buf, size_t len);         // bytes or -errno (-EAGAIN: nothing)
long ipop_write(int fd, const void *buf, size_t len);  // bytes or -errno
int ipop_close(int fd);

// ---- Unix control socket --------------------------------------------------------------
int ipop_unix_listen(const char *path);   // removes a stale socket file first; mode 0600
int ipop_unix_accept(int fd);             // non-blocking accept; -EAGAIN if none
int ipop_unix_connect(const char *path);
#endif
