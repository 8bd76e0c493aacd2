// The machine's ceiling for TCP churn: connect, read until EOF, then either close(2) and a new
// socket(2) ("plain"), or shutdown + connect(AF_UNSPEC) and reuse the fd ("recycle").
// usage: churn-client <port> <plain|recycle> <connections> <in-flight> [threads|epoll]
//   threads (default): blocking sockets, one thread per in-flight slot, on every core;
//   epoll: one thread, non-blocking sockets and one epoll loop, as Node runs (a like-for-like
//          ceiling for a single-threaded runtime).
// Prints connections per second and the CPU time the process used (getrusage), so the bench can
// quote client CPU per connection beside Node's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in dst;
static int recycle;
static atomic_long remaining;
static atomic_long failures;

static void *worker(void *arg) {
  (void)arg;
  char buf[256];
  int fd = -1;
  struct sockaddr unspec;
  memset(&unspec, 0, sizeof unspec);
  unspec.sa_family = AF_UNSPEC;
  while (atomic_fetch_sub(&remaining, 1) > 0) {
    if (fd < 0) fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst)) { atomic_fetch_add(&failures, 1); close(fd); fd = -1; continue; }
    while (read(fd, buf, sizeof buf) > 0) {}
    if (recycle) {
      // Our FIN (the peer closed first: LAST_ACK), then AF_UNSPEC: tcp_disconnect sends nothing.
      shutdown(fd, SHUT_WR);
      connect(fd, &unspec, sizeof unspec);
    } else {
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) close(fd);
  return NULL;
}

// One thread, `inflight` connections at a time on one epoll instance (level-triggered EPOLLIN:
// the greeting and the server's EOF). A recycled fd stays registered in epoll across connections.
static void run_epoll(long n, int inflight) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr unspec;
  memset(&unspec, 0, sizeof unspec);
  unspec.sa_family = AF_UNSPEC;
  long started = 0, finished = 0;
  char buf[256];
  struct epoll_event ev, events[256];
  // start(fd): connect fd (a new socket when fd < 0); returns the fd, registered in epoll.
  int fds[256];
  for (int i = 0; i < inflight; i++) fds[i] = -1;
  for (int i = 0; i < inflight && started < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    connect(fd, (struct sockaddr *)&dst, sizeof dst);
    fds[i] = fd;
    started++;
  }
  while (finished < n) {
    int k = epoll_wait(ep, events, 256, -1);
    for (int e = 0; e < k; e++) {
      int slot = events[e].data.u32;
      int fd = fds[slot];
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0) {}
      if (r < 0 && errno == EAGAIN) continue; // the EOF is still to come
      if (r < 0) atomic_fetch_add(&failures, 1);
      finished++;
      if (recycle && r == 0) {
        shutdown(fd, SHUT_WR);
        connect(fd, &unspec, sizeof unspec);
      } else {
        close(fd);
        fd = -1;
      }
      if (started >= n) {
        if (fd >= 0) close(fd);
        fds[slot] = -1;
        continue;
      }
      if (fd < 0) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ev.events = EPOLLIN;
        ev.data.u32 = slot;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      }
      connect(fd, (struct sockaddr *)&dst, sizeof dst);
      fds[slot] = fd;
      started++;
    }
  }
  close(ep);
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s port plain|recycle connections in-flight\n", argv[0]); return 2; }
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons(atoi(argv[1]));
  recycle = strcmp(argv[2], "recycle") == 0;
  long n = atol(argv[3]);
  int c = atoi(argv[4]);
  atomic_store(&remaining, n);
  int epoll = argc > 5 && strcmp(argv[5], "epoll") == 0;
  if (c < 1 || c > 256) { fprintf(stderr, "in-flight must be 1..256\n"); return 2; }
  pthread_t t[256];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  if (epoll) {
    run_epoll(n, c);
  } else {
    for (int i = 0; i < c; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < c; i++) pthread_join(t[i], NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  double sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"mode\":\"%s\",\"loop\":\"%s\",\"connections\":%ld,\"failures\":%ld,\"seconds\":%.4f,\"perSecond\":%.1f,\"cpuUserSec\":%.4f,\"cpuSysSec\":%.4f}\n",
         argv[2], epoll ? "epoll" : "threads", n, atomic_load(&failures), s, n / s, user, sys);
  return 0;
}
