#define _GNU_SOURCE
#include "clinuxnet.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <ifaddrs.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

static void copy_name(char dst[IFNAMSIZ], const char *name) {
    memset(dst, 0, IFNAMSIZ);
    strncpy(dst, name, IFNAMSIZ - 1);
}

int ipop_tap_open(const char *name, int multi_queue, int vnet_hdr, char *actual) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (vnet_hdr) ifr.ifr_flags |= IFF_VNET_HDR;
    copy_name(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (actual) { memcpy(actual, ifr.ifr_name, IFNAMSIZ); actual[IFNAMSIZ - 1] = 0; }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ipop_tap_set_offload(int fd, int csum_tso) {
    unsigned flags = csum_tso ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) : 0;
    return ioctl(fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

long ipop_writev2(int fd, const void *a, size_t alen, const void *b, size_t blen) {
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    ssize_t n;
    do { n = writev(fd, iov, 2); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (long)n;
}

static int ctl_socket(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return s < 0 ? -errno : s;
}

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int s = ctl_socket();
    if (s < 0) return s;
    copy_name(ifr->ifr_name, name);
    int r = ioctl(s, req, ifr);
    int e = errno;
    close(s);
    return r < 0 ? -e : 0;
}

int ipop_if_index(const char *name) {
    unsigned idx = if_nametoindex(name);
    return idx == 0 ? -ENODEV : (int)idx;
}

int ipop_if_set_mtu(const char *name, int mtu) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    ifr.ifr_mtu = mtu;
    return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int ipop_if_get_mtu(const char *name) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    int r = ifreq_ioctl(name, SIOCGIFMTU, &ifr);
    return r < 0 ? r : ifr.ifr_mtu;
}

int ipop_if_set_mac(const char *name, const uint8_t mac[6]) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = 1; // ARPHRD_ETHER
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return ifreq_ioctl(name, SIOCSIFHWADDR, &ifr);
}

int ipop_if_get_mac(const char *name, uint8_t mac[6]) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    int r = ifreq_ioctl(name, SIOCGIFHWADDR, &ifr);
    if (r == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return r;
}

int ipop_if_set_up(const char *name, int up) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    int r = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr);
    if (r < 0) return r;
    if (up) ifr.ifr_flags |= IFF_UP; else ifr.ifr_flags &= ~IFF_UP;
    return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

int ipop_if_set_txqueuelen(const char *name, int qlen) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    ifr.ifr_qlen = qlen;
    return ifreq_ioctl(name, SIOCSIFTXQLEN, &ifr);
}

int ipop_if_set_ipv4(const char *name, uint32_t addr, int prefix) {
    if (prefix < 0 || prefix > 32) return -EINVAL;
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr);
    int r = ifreq_ioctl(name, SIOCSIFADDR, &ifr);
    if (r < 0) return r;
    memset(&ifr, 0, sizeof ifr);
    sin = (struct sockaddr_in *)&ifr.ifr_netmask;
    sin->sin_family = AF_INET;
    uint32_t mask = prefix == 0 ? 0 : (0xffffffffu << (32 - prefix));
    sin->sin_addr.s_addr = htonl(mask);
    return ifreq_ioctl(name, SIOCSIFNETMASK, &ifr);
}

// struct in6_ifreq from <linux/ipv6.h>, declared here to avoid that header's clashes with glibc.
struct ipop_in6_ifreq { struct in6_addr addr; uint32_t prefixlen; int ifindex; };

int ipop_if_add_ipv6(const char *name, const uint8_t addr[16], int prefix) {
    int idx = ipop_if_index(name);
    if (idx < 0) return idx;
    int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ipop_in6_ifreq req;
    memset(&req, 0, sizeof req);
    memcpy(&req.addr, addr, 16);
    req.prefixlen = (uint32_t)prefix;
    req.ifindex = idx;
    int r = ioctl(s, SIOCSIFADDR, &req);
    int e = errno;
    close(s);
    return r < 0 ? -e : 0;
}

int ipop_if_is_bridge(const char *name) {
    if (strlen(name) >= IFNAMSIZ || strchr(name, '/')) return -EINVAL;
    char path[96];
    snprintf(path, sizeof path, "/sys/class/net/%s", name);
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    snprintf(path, sizeof path, "/sys/class/net/%s/bridge", name);
    return stat(path, &st) == 0 ? 1 : 0;
}

static int bridge_ifop(const char *bridge, const char *ifname, unsigned long req) {
    int idx = ipop_if_index(ifname);
    if (idx < 0) return idx;
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = idx;
    return ifreq_ioctl(bridge, req, &ifr);
}

int ipop_bridge_add_if(const char *bridge, const char *ifname) { return bridge_ifop(bridge, ifname, SIOCBRADDIF); }
int ipop_bridge_del_if(const char *bridge, const char *ifname) { return bridge_ifop(bridge, ifname, SIOCBRDELIF); }

// ---- UDP -------------------------------------------------------------------------------
int ipop_udp_open(uint16_t port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int size = 4 << 20;
    // FORCE variants need CAP_NET_ADMIN (we are root); fall back silently to the capped ones.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct sockaddr_in sin; memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ipop_udp_local_port(int fd) {
    struct sockaddr_in sin; socklen_t len = sizeof sin;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0) return -errno;
    return ntohs(sin.sin_port);
}

int ipop_udp_sendto(int fd, const void *buf, size_t len, uint32_t addr, uint16_t port) {
    struct sockaddr_in sin; memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(addr);
    ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&sin, sizeof sin);
    return n < 0 ? -errno : (int)n;
}

// UDP GSO (UDP_SEGMENT, Linux 4.18+): a run of datagrams to one destination, all of one
// length but the last (which may be shorter), goes to the kernel as one message whose iovecs
// are the slots, with a cmsg giving the segment size; the stack handles it as one packet and
// cuts it into datagrams as late as it can (veth passes it whole). Receivers see ordinary
// datagrams. Limits per run: 64 segments (UDP_MAX_SEGMENTS of older kernels) and 65000 bytes
// (the IPv4 UDP payload limit is 65507).
#define IPOP_GSO_MAX_SEGMENTS 64
#define IPOP_GSO_MAX_BYTES 65000

struct ipop_batch {
    int count;
    int size;
    int gso;          // 1: try UDP_SEGMENT runs; 0: off (disabled, or refused by the kernel)
    uint8_t *storage;
    struct iovec *iov;
    struct sockaddr_in *addrs;
    struct mmsghdr *msgs;
    struct mmsghdr *runs;     // GSO messages, one per run, built by ipop_batch_send
    int *run_slots;           // slots in each run
    uint8_t *control;         // one CMSG_SPACE(uint16_t) per run
    ipop_batch_stats stats;
    // UDP GRO receive (ipop_batch_enable_gro): recvmmsg into a few 64 KB buffers; a coalesced
    // message is cut into slots by its segment size (UDP_GRO cmsg). Segments that did not fit
    // in this call stay pending for the next one.
    int gro;
    int gro_count;            // big buffers
    uint8_t *gro_storage;
    struct iovec *gro_iov;
    struct sockaddr_in *gro_addrs;
    struct mmsghdr *gro_msgs;
    uint8_t *gro_control;     // one CMSG_SPACE(int) per big buffer
    int gro_received;         // messages in the big buffers
    int gro_next;             // first message not fully handed out
    size_t gro_offset;        // bytes of gro_next already handed out
};

#define IPOP_GRO_BUFFER 65536
#define IPOP_GRO_BUFFERS 4

ipop_batch *ipop_batch_create(int count, int buffer_size) {
    if (count <= 0 || buffer_size <= 0) return NULL;
    ipop_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->size = buffer_size;
    b->storage = calloc((size_t)count, (size_t)buffer_size);
    b->iov = calloc((size_t)count, sizeof *b->iov);
    b->addrs = calloc((size_t)count, sizeof *b->addrs);
    b->msgs = calloc((size_t)count, sizeof *b->msgs);
    b->runs = calloc((size_t)count, sizeof *b->runs);
    b->run_slots = calloc((size_t)count, sizeof *b->run_slots);
    b->control = calloc((size_t)count, CMSG_SPACE(sizeof(uint16_t)));
    if (!b->storage || !b->iov || !b->addrs || !b->msgs || !b->runs || !b->run_slots || !b->control) {
        ipop_batch_destroy(b);
        return NULL;
    }
    b->gso = 1;
    for (int i = 0; i < count; i++) {
        b->iov[i].iov_base = b->storage + (size_t)i * (size_t)buffer_size;
        b->iov[i].iov_len = (size_t)buffer_size;
        b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
        b->msgs[i].msg_hdr.msg_iovlen = 1;
        b->msgs[i].msg_hdr.msg_name = &b->addrs[i];
        b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
    }
    return b;
}

void ipop_batch_destroy(ipop_batch *b) {
    if (!b) return;
    free(b->storage); free(b->iov); free(b->addrs); free(b->msgs);
    free(b->runs); free(b->run_slots); free(b->control);
    free(b->gro_storage); free(b->gro_iov); free(b->gro_addrs); free(b->gro_msgs); free(b->gro_control);
    free(b);
}

uint8_t *ipop_batch_buffer(ipop_batch *b, int i) { return b->storage + (size_t)i * (size_t)b->size; }
int ipop_batch_capacity(const ipop_batch *b) { return b->count; }
int ipop_batch_buffer_size(const ipop_batch *b) { return b->size; }
int ipop_batch_length(const ipop_batch *b, int i) { return (int)b->msgs[i].msg_len; }
uint32_t ipop_batch_addr(const ipop_batch *b, int i) { return ntohl(b->addrs[i].sin_addr.s_addr); }
uint16_t ipop_batch_port(const ipop_batch *b, int i) { return ntohs(b->addrs[i].sin_port); }

void ipop_batch_set(ipop_batch *b, int i, int length, uint32_t addr, uint16_t port) {
    b->iov[i].iov_len = (size_t)length;
    b->addrs[i].sin_family = AF_INET;
    b->addrs[i].sin_port = htons(port);
    b->addrs[i].sin_addr.s_addr = htonl(addr);
    b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
}

int ipop_batch_enable_gro(int fd, ipop_batch *b) {
    if (b->gro) return 0;
    int g = IPOP_GRO_BUFFERS;
    size_t cspace = CMSG_SPACE(sizeof(int));
    b->gro_storage = calloc((size_t)g, IPOP_GRO_BUFFER);
    b->gro_iov = calloc((size_t)g, sizeof *b->gro_iov);
    b->gro_addrs = calloc((size_t)g, sizeof *b->gro_addrs);
    b->gro_msgs = calloc((size_t)g, sizeof *b->gro_msgs);
    b->gro_control = calloc((size_t)g, cspace);
    if (!b->gro_storage || !b->gro_iov || !b->gro_addrs || !b->gro_msgs || !b->gro_control) return -ENOMEM;
    int on = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) return -errno;
    b->gro_count = g;
    b->gro = 1;
    return 0;
}

int ipop_batch_pending(const ipop_batch *b) { return b->gro && b->gro_next < b->gro_received; }

// GRO receive: hands out pending segments first, then receives more while slots are free.
static int batch_recv_gro(int fd, ipop_batch *b) {
    int filled = 0;
    // A recvmmsg that returned fewer messages than asked emptied the socket: asking again in the
    // same batch would only cost a syscall that says EAGAIN (epoll is level-triggered, so anything
    // that arrives meanwhile wakes the loop again).
    int emptied = 0;
    while (filled < b->count) {
        if (b->gro_next >= b->gro_received) {
            if (emptied) return filled;
            size_t cspace = CMSG_SPACE(sizeof(int));
            for (int m = 0; m < b->gro_count; m++) {
                b->gro_iov[m].iov_base = b->gro_storage + (size_t)m * IPOP_GRO_BUFFER;
                b->gro_iov[m].iov_len = IPOP_GRO_BUFFER;
                struct msghdr *h = &b->gro_msgs[m].msg_hdr;
                h->msg_name = &b->gro_addrs[m];
                h->msg_namelen = sizeof b->gro_addrs[m];
                h->msg_iov = &b->gro_iov[m];
                h->msg_iovlen = 1;
                h->msg_control = b->gro_control + (size_t)m * cspace;
                h->msg_controllen = cspace;
                h->msg_flags = 0;
                b->gro_msgs[m].msg_len = 0;
            }
            int n = recvmmsg(fd, b->gro_msgs, (unsigned)b->gro_count, MSG_DONTWAIT, NULL);
            if (n <= 0) {
                if (filled > 0) return filled;
                return (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
            }
            b->gro_received = n;
            emptied = n < b->gro_count;
            b->gro_next = 0;
            b->gro_offset = 0;
        }
        struct mmsghdr *m = &b->gro_msgs[b->gro_next];
        size_t total = m->msg_len;
        size_t seg = total;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr); c; c = CMSG_NXTHDR(&m->msg_hdr, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int size;
                memcpy(&size, CMSG_DATA(c), sizeof size);
                if (size > 0) seg = (size_t)size;
            }
        }
        if (total == 0) {   // an empty datagram is still one (the engine counts it as malformed)
            b->msgs[filled].msg_len = 0;
            b->addrs[filled] = b->gro_addrs[b->gro_next];
            filled++;
            b->gro_next++;
            b->gro_offset = 0;
            continue;
        }
        const uint8_t *base = b->gro_storage + (size_t)b->gro_next * IPOP_GRO_BUFFER;
        while (b->gro_offset < total && filled < b->count) {
            size_t len = total - b->gro_offset < seg ? total - b->gro_offset : seg;
            if (len > (size_t)b->size) len = (size_t)b->size;   // cannot happen below 9216-byte segments
            memcpy(b->storage + (size_t)filled * (size_t)b->size, base + b->gro_offset, len);
            b->msgs[filled].msg_len = (unsigned)len;
            b->addrs[filled] = b->gro_addrs[b->gro_next];
            b->gro_offset += seg;
            filled++;
        }
        if (b->gro_offset >= total) {
            b->gro_next++;
            b->gro_offset = 0;
        }
    }
    return filled;
}

int ipop_batch_recv(int fd, ipop_batch *b) {
    if (b->gro) return batch_recv_gro(fd, b);
    for (int i = 0; i < b->count; i++) {
        b->iov[i].iov_len = (size_t)b->size;
        b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
        b->msgs[i].msg_len = 0;
    }
    int n = recvmmsg(fd, b->msgs, (unsigned)b->count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    return n;
}

// sendmmsg over msgs[0, count), skipping a message the kernel refuses (e.g. EPERM from a
// firewall, ENETUNREACH) so it cannot wedge the rest. Returns how many were handled, or -errno
// if none could be (EAGAIN: socket buffer full). With stop_on_gso_error, stops at a message
// refused with EIO/EINVAL/EOPNOTSUPP (a kernel or route without UDP GSO, or a segment larger
// than the path MTU) and puts that errno in *refused (else 0).
static int send_messages(int fd, struct mmsghdr *msgs, int count, int stop_on_gso_error, int *refused) {
    int sent = 0;
    *refused = 0;
    while (sent < count) {
        int n = sendmmsg(fd, msgs + sent, (unsigned)(count - sent), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (stop_on_gso_error && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
                *refused = errno;
                return sent;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) { sent++; continue; }
            return sent > 0 ? sent : -errno;
        }
        sent += n;
    }
    return sent;
}

static int send_plain(int fd, ipop_batch *b, int first, int count) {
    int refused;
    int n = send_messages(fd, b->msgs + first, count, 0, &refused);
    if (n > 0) { b->stats.messages += (uint64_t)n; b->stats.datagrams += (uint64_t)n; }
    return n;
}

int ipop_batch_send(int fd, ipop_batch *b, int count) {
    if (count <= 0) return 0;
    if (!b->gso) return send_plain(fd, b, 0, count);
    // Group the slots into runs: same destination, same length, the last one may be shorter.
    int runs = 0;
    size_t cspace = CMSG_SPACE(sizeof(uint16_t));
    for (int i = 0; i < count;) {
        size_t seg = b->iov[i].iov_len;
        size_t total = seg;
        int j = i + 1;
        while (j < count && j - i < IPOP_GSO_MAX_SEGMENTS && seg > 0 &&
               b->addrs[j].sin_addr.s_addr == b->addrs[i].sin_addr.s_addr &&
               b->addrs[j].sin_port == b->addrs[i].sin_port &&
               b->iov[j].iov_len > 0 && b->iov[j].iov_len <= seg &&   // an empty datagram would vanish in a run
               total + b->iov[j].iov_len <= IPOP_GSO_MAX_BYTES) {
            total += b->iov[j].iov_len;
            j++;
            if (b->iov[j - 1].iov_len < seg) break;   // a shorter datagram ends the run
        }
        struct msghdr *h = &b->runs[runs].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &b->addrs[i];
        h->msg_namelen = sizeof b->addrs[i];
        h->msg_iov = &b->iov[i];
        h->msg_iovlen = (size_t)(j - i);
        if (j - i > 1) {
            uint8_t *control = b->control + (size_t)runs * cspace;
            memset(control, 0, cspace);
            h->msg_control = control;
            h->msg_controllen = cspace;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gso_size = (uint16_t)seg;
            memcpy(CMSG_DATA(c), &gso_size, sizeof gso_size);
        }
        b->runs[runs].msg_len = 0;
        b->run_slots[runs] = j - i;
        runs++;
        i = j;
    }
    int refused;
    int n = send_messages(fd, b->runs, runs, 1, &refused);
    int slots = 0;
    for (int r = 0; r < (n > 0 ? n : 0); r++) slots += b->run_slots[r];
    if (n > 0) { b->stats.messages += (uint64_t)n; b->stats.datagrams += (uint64_t)slots; }
    if (refused) {
        // The kernel refused a GSO run: send the rest one datagram per message. EIO/EOPNOTSUPP mean
        // no GSO on this route at all; EINVAL may be one oversized run, so only repeated ones count.
        b->stats.gso_refused++;
        if (refused != EINVAL || b->stats.gso_refused >= 8) { b->gso = 0; b->stats.gso_disabled = 1; }
        int rest = send_plain(fd, b, slots, count - slots);
        return rest > 0 ? slots + rest : (slots > 0 ? slots : rest);
    }
    if (n < 0) return n;
    return slots;
}

void ipop_batch_set_gso(ipop_batch *b, int on) { b->gso = on ? 1 : 0; }
ipop_batch_stats ipop_batch_get_stats(const ipop_batch *b) { return b->stats; }

// ---- event loop --------------------------------------------------------------------------
int ipop_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ipop_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event ev; memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int ipop_epoll_del(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int ipop_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int ipop_signalfd_create(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -EINVAL;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    // A peer going away must not kill us with SIGPIPE on the control socket.
    signal(SIGPIPE, SIG_IGN);
    return fd < 0 ? -errno : fd;
}

int ipop_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n < 0) return (errno == EAGAIN) ? 0 : -errno;
    if (n != sizeof si) return 0;
    return (int)si.ssi_signo;
}

int ipop_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
    return 0;
}

int ipop_eventfd_create(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void ipop_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
}

void ipop_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t r = read(fd, &value, sizeof value);
    (void)r;
}

int ipop_local_ipv4(uint32_t *addrs, int *prefixes, char (*names)[16], int max) {
    struct ifaddrs *list, *it;
    if (getifaddrs(&list) < 0) return -errno;
    int n = 0;
    for (it = list; it && n < max; it = it->ifa_next) {
        if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET) continue;
        if (!(it->ifa_flags & IFF_UP) || (it->ifa_flags & IFF_LOOPBACK)) continue;
        uint32_t mask = it->ifa_netmask ? ntohl(((struct sockaddr_in *)it->ifa_netmask)->sin_addr.s_addr) : 0xffffffffu;
        int prefix = 0;
        while (prefix < 32 && (mask & (0x80000000u >> prefix))) prefix++;
        addrs[n] = ntohl(((struct sockaddr_in *)it->ifa_addr)->sin_addr.s_addr);
        prefixes[n] = prefix;
        memset(names[n], 0, 16);
        strncpy(names[n], it->ifa_name, 15);
        n++;
    }
    freeifaddrs(list);
    return n;
}

long ipop_read(int fd, void *buf, size_t len) {
    ssize_t n;
    do { n = read(fd, buf, len); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (long)n;
}

long ipop_write(int fd, const void *buf, size_t len) {
    ssize_t n;
    do { n = write(fd, buf, len); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (long)n;
}

int ipop_close(int fd) { return close(fd) < 0 ? -errno : 0; }

// ---- Unix control socket ----------------------------------------------------------------
static int fill_sun(struct sockaddr_un *sun, const char *path) {
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun->sun_path) return -ENAMETOOLONG;
    strcpy(sun->sun_path, path);
    return 0;
}

int ipop_unix_listen(const char *path) {
    struct sockaddr_un sun;
    int r = fill_sun(&sun, path);
    if (r < 0) return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // A socket file left by a crashed daemon: remove it only if nobody answers on it.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        if (connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) { close(probe); close(fd); return -EADDRINUSE; }
        close(probe);
    }
    unlink(path);
    mode_t old = umask(077);
    int b = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (b < 0 || listen(fd, 16) < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int ipop_unix_accept(int fd) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return -errno;
    // The node's one loop serves this connection: a client that connects and stays silent (or
    // stops reading) may hold the data path up this long at most. `ipop status` writes at once.
    struct timeval rtv = { .tv_sec = 0, .tv_usec = 250000 };
    struct timeval stv = { .tv_sec = 1, .tv_usec = 0 };
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof rtv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
    return c;
}

int ipop_unix_connect(const char *path) {
    struct sockaddr_un sun;
    int r = fill_sun(&sun, path);
    if (r < 0) return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) { int e = errno; close(fd); return -e; }
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}
