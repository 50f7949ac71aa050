/*
 * The epoll floor: the least work an epoll HTTP server can do per request, as the physical
 * limit coreloop is measured against (issue 16). One thread, edge-triggered epoll, `recv` into
 * a buffer until EAGAIN, count request ends ("\r\n\r\n"), copy one canned response per request,
 * one `send` per readiness batch. No parsing, routing, timers, date or stats; the response is
 * byte-for-byte the size of coreloop's /plaintext answer (133 bytes) so that both put the same
 * bytes on the wire.
 *
 * Build: cc -O2 -o floor floor.c      Run: ./floor PORT      (127.0.0.1 only)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 20000
#define IN_CAP 65536
#define OUT_CAP (1 << 20)

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nServer: coreloop\r\nContent-Type: text/plain\r\n"
    "Content-Length: 13\r\nDate: Tue, 01 Dec 2026 12:30:02 GMT\r\n\r\nHello, World!";

struct conn {
    /* How much of "\r\n\r\n" the previous read ended in (0-3): a request end may straddle reads. */
    int matched;
    /* Bytes of a response batch the socket did not take yet. */
    char *pending;
    size_t pending_len;
};

static struct conn conns[MAX_FDS];
static char in_buf[IN_CAP];
static char out_buf[OUT_CAP];

/* Counts request ends in buf[0..n], carrying a partial match across calls. */
static size_t count_ends(struct conn *c, const char *buf, size_t n) {
    static const char END[] = "\r\n\r\n";
    size_t ends = 0;
    int m = c->matched;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == END[m]) {
            if (++m == 4) {
                ends++;
                m = 0;
            }
        } else {
            m = buf[i] == '\r' ? 1 : 0;
        }
    }
    c->matched = m;
    return ends;
}

static void drop(int epfd, int fd) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    free(conns[fd].pending);
    memset(&conns[fd], 0, sizeof conns[fd]);
    close(fd);
}

/* Keeps out[0..len] behind what is already pending, for the next EPOLLOUT. */
static int keep(struct conn *c, const char *out, size_t len) {
    char *kept = realloc(c->pending, c->pending_len + len);
    if (!kept)
        return -1;
    memcpy(kept + c->pending_len, out, len);
    c->pending = kept;
    c->pending_len += len;
    return 0;
}

/* Sends out[0..len], or queues it behind pending bytes; keeps what the socket refused.
 * Returns -1 when the peer is gone. */
static int send_or_keep(struct conn *c, const char *out, size_t len) {
    if (c->pending)
        return keep(c, out, len);
    while (len > 0) {
        ssize_t n = send((int)(c - conns), out, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return keep(c, out, len);
        if (n <= 0)
            return -1;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

static int flush_pending(struct conn *c) {
    char *old = c->pending;
    size_t len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    int rc = old ? send_or_keep(c, old, len) : 0;
    free(old);
    return rc;
}

static void serve(int epfd, int fd, unsigned events) {
    struct conn *c = &conns[fd];
    if ((events & EPOLLOUT) && flush_pending(c) < 0) {
        drop(epfd, fd);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    size_t ends = 0;
    for (;;) {
        ssize_t n = recv(fd, in_buf, sizeof in_buf, 0);
        if (n > 0) {
            ends += count_ends(c, in_buf, (size_t)n);
            if ((size_t)n < sizeof in_buf)
                break; /* a short read: the socket is empty, as coreloop also assumes */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        drop(epfd, fd);
        return;
    }
    size_t len = 0;
    const size_t size = sizeof RESPONSE - 1;
    while (ends > 0) {
        for (; ends > 0 && len + size <= sizeof out_buf; ends--, len += size)
            memcpy(out_buf + len, RESPONSE, size);
        if (send_or_keep(c, out_buf, len) < 0) {
            drop(epfd, fd);
            return;
        }
        len = 0;
    }
}

static void accept_all(int epfd, int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of fds: the backlog holds the rest */
        }
        if (fd >= MAX_FDS) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 16384) < 0) {
        perror("listen");
        return 1;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = listener};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(epfd, events, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener)
                accept_all(epfd, listener);
            else
                serve(epfd, fd, events[i].events);
        }
    }
}
