// The machine's ceiling for TCP churn: connect, read until EOF, then either close(2) and a new
// socket(2) ("plain"), or shutdown + connect(AF_UNSPEC) and reuse the fd ("recycle").
// usage: churn-client <port> <plain|recycle> <connections> <in-flight>
// Blocking sockets, one thread per in-flight slot. Prints connections per second.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    shutdown(fd, SHUT_WR);
    if (recycle) {
      connect(fd, &unspec, sizeof unspec);
    } else {
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) close(fd);
  return NULL;
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
  pthread_t t[256];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < c && i < 256; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < c && i < 256; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  printf("{\"mode\":\"%s\",\"connections\":%ld,\"failures\":%ld,\"seconds\":%.4f,\"perSecond\":%.1f}\n", argv[2], n, atomic_load(&failures), s, n / s);
  return 0;
}
