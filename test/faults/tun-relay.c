/*
 * tun-relay: copies IPv4 packets between two TUN devices, one in each of two network namespaces,
 * and injects faults on the way (this kernel has no netem qdisc and no nftables).
 *
 *   tun-relay --netns-a /run/netns/A --netns-b /run/netns/B --dev NAME [rules...]
 *
 * Direction "ab" is A -> B (the client's packets), "ba" is B -> A (the server's).
 *   --delay-ab MS / --delay-ba MS            fixed one-way delay
 *   --drop-fin-ab N / --drop-fin-ba N        drop the first N TCP segments with FIN set
 *   --delay-ack-after-fin-ab MS / ...-ba MS  extra delay for pure ACKs (no SYN/FIN/RST, no payload)
 *                                            of a flow once a FIN has passed the other way: the
 *                                            "last ACK" of a close arrives late
 *   --loss-ab P / --loss-ba P                drop TCP segments with probability P (0..1)
 *   --seed S                                 seed of the loss decisions (xorshift64*)
 *   --max-seconds S                          exit after S seconds whatever happens (a bound)
 *   --trace 1                                also log every TCP segment forwarded ("pass")
 *
 * The TUN devices are created inside the namespaces (setns before opening /dev/net/tun), so they
 * vanish with this process. Every injected fault is logged on stdout, one line each, so that a test
 * can assert that the fault really happened:
 *   <wall-clock ms> drop-fin|drop-loss|delay-ack|deliver-ack|fin|rst|pass <dir> <flags> <src>:<sp> <dst>:<dp> seq=<n> ack=<n> len=<n>
 * ("fin" and "rst" are forwarded segments, logged for the tests' sake; "pass" any other, with --trace.) SIGUSR1 prints a "stats"
 * line; SIGTERM prints it and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PACKET 65536
#define MAX_PENDING 65536
#define FLOW_SLOTS 8192

enum { AB = 0, BA = 1 };
static const char *DIR_NAME[2] = { "ab", "ba" };

struct rules {
  long delay_ms[2];
  long drop_fin[2];
  long ack_delay_ms[2];
  double loss[2];
};

struct packet {
  uint64_t due_ns;
  uint64_t arrived_ns;
  uint64_t order; /* FIFO among equal due times */
  int dir;
  int delayed_ack; /* log its delivery */
  size_t len;
  unsigned char data[];
};

struct flow {
  uint32_t a_addr, b_addr; /* addresses as seen in direction AB (src, dst) */
  uint16_t a_port, b_port;
  uint8_t used;
  uint8_t fin_seen[2];
};

static struct rules rules;
static int trace;
static struct packet *heap[MAX_PENDING];
static size_t heap_len;
static uint64_t order_counter;
static struct flow flows[FLOW_SLOTS];
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t start_ns;
static volatile sig_atomic_t want_stats, want_exit;

static struct {
  unsigned long forwarded[2], dropped_fin[2], dropped_loss[2], delayed_ack[2], overflow, non_ipv4;
  uint64_t min_hold_ns[2]; /* the shortest time a forwarded packet was held: the delay really applied */
} stats = { .min_hold_ns = { UINT64_MAX, UINT64_MAX } };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Log timestamps are wall-clock ms (CLOCK_REALTIME), to line up with the agents' Date.now(). */
static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "tun-relay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double next_random(void) {
  /* xorshift64*: deterministic for a seed, good enough for loss decisions */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* ---- the pending queue: a binary min-heap on (due_ns, order) -------------------------------- */

static int before(const struct packet *x, const struct packet *y) {
  return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->order < y->order);
}

static void heap_push(struct packet *p) {
  size_t i = heap_len++;
  heap[i] = p;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(heap[i], heap[parent])) break;
    struct packet *t = heap[i];
    heap[i] = heap[parent];
    heap[parent] = t;
    i = parent;
  }
}

static struct packet *heap_pop(void) {
  struct packet *top = heap[0];
  heap[0] = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_len && before(heap[l], heap[m])) m = l;
    if (r < heap_len && before(heap[r], heap[m])) m = r;
    if (m == i) break;
    struct packet *t = heap[i];
    heap[i] = heap[m];
    heap[m] = t;
    i = m;
  }
  return top;
}

/* ---- TCP parsing ----------------------------------------------------------------------------- */

struct tcp_view {
  int is_tcp;
  uint32_t src, dst; /* network order */
  uint16_t sport, dport; /* host order */
  uint32_t seq, ack;
  uint8_t flags;
  size_t payload;
};

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

static int parse(const unsigned char *p, size_t len, struct tcp_view *v) {
  memset(v, 0, sizeof *v);
  if (len < 20 || (p[0] >> 4) != 4) return -1;
  size_t ihl = (size_t)(p[0] & 0x0f) * 4;
  size_t total = ((size_t)p[2] << 8) | p[3];
  if (ihl < 20 || total > len || total < ihl) return -1;
  memcpy(&v->src, p + 12, 4);
  memcpy(&v->dst, p + 16, 4);
  if (p[9] != 6) return 0; /* not TCP */
  uint16_t frag = (uint16_t)(((p[6] & 0x1f) << 8) | p[7]);
  if (frag != 0 || total < ihl + 20) return 0; /* fragments: forwarded untouched */
  const unsigned char *t = p + ihl;
  size_t doff = (size_t)(t[12] >> 4) * 4;
  if (doff < 20 || ihl + doff > total) return 0;
  v->is_tcp = 1;
  v->sport = (uint16_t)((t[0] << 8) | t[1]);
  v->dport = (uint16_t)((t[2] << 8) | t[3]);
  v->seq = ((uint32_t)t[4] << 24) | ((uint32_t)t[5] << 16) | ((uint32_t)t[6] << 8) | t[7];
  v->ack = ((uint32_t)t[8] << 24) | ((uint32_t)t[9] << 16) | ((uint32_t)t[10] << 8) | t[11];
  v->flags = t[13];
  v->payload = total - ihl - doff;
  return 0;
}

static struct flow *flow_of(const struct tcp_view *v, int dir) {
  uint32_t a = dir == AB ? v->src : v->dst, b = dir == AB ? v->dst : v->src;
  uint16_t ap = dir == AB ? v->sport : v->dport, bp = dir == AB ? v->dport : v->sport;
  uint32_t h = (a * 2654435761U) ^ (b * 40503U) ^ ((uint32_t)ap << 16 | bp) * 2246822519U;
  for (size_t i = 0; i < FLOW_SLOTS; i++) {
    struct flow *f = &flows[(h + i) % FLOW_SLOTS];
    if (!f->used) {
      f->used = 1;
      f->a_addr = a;
      f->b_addr = b;
      f->a_port = ap;
      f->b_port = bp;
      f->fin_seen[0] = f->fin_seen[1] = 0;
      return f;
    }
    if (f->a_addr == a && f->b_addr == b && f->a_port == ap && f->b_port == bp) return f;
  }
  /* Table full (never in these tests): forget everything rather than fail. */
  memset(flows, 0, sizeof flows);
  return flow_of(v, dir);
}

static void log_event(const char *event, int dir, const struct tcp_view *v) {
  char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN], flags[8];
  int n = 0;
  if (v->flags & F_SYN) flags[n++] = 'S';
  if (v->flags & F_FIN) flags[n++] = 'F';
  if (v->flags & F_RST) flags[n++] = 'R';
  if (v->flags & F_PSH) flags[n++] = 'P';
  if (v->flags & F_ACK) flags[n++] = '.';
  flags[n] = '\0';
  inet_ntop(AF_INET, &v->src, src, sizeof src);
  inet_ntop(AF_INET, &v->dst, dst, sizeof dst);
  printf("%.3f %s %s %s %s:%u %s:%u seq=%u ack=%u len=%zu\n", wall_ms(), event,
         DIR_NAME[dir], flags, src, v->sport, dst, v->dport, v->seq, v->ack, v->payload);
}

static unsigned long long hold_us(int dir) {
  return stats.min_hold_ns[dir] == UINT64_MAX ? 0 : (unsigned long long)(stats.min_hold_ns[dir] / 1000);
}

static void print_stats(void) {
  printf("%.3f stats forwarded_ab=%lu forwarded_ba=%lu drop_fin_ab=%lu drop_fin_ba=%lu drop_loss_ab=%lu "
         "drop_loss_ba=%lu delay_ack_ab=%lu delay_ack_ba=%lu overflow=%lu non_ipv4=%lu pending=%zu "
         "min_hold_us_ab=%llu min_hold_us_ba=%llu\n",
         wall_ms(), stats.forwarded[AB], stats.forwarded[BA], stats.dropped_fin[AB],
         stats.dropped_fin[BA], stats.dropped_loss[AB], stats.dropped_loss[BA], stats.delayed_ack[AB],
         stats.delayed_ack[BA], stats.overflow, stats.non_ipv4, heap_len, hold_us(AB), hold_us(BA));
}

/* ---- the rules ------------------------------------------------------------------------------- */

static void on_packet(int dir, const unsigned char *data, size_t len) {
  struct tcp_view v;
  if (parse(data, len, &v) != 0) {
    stats.non_ipv4++; /* IPv6 router solicitations and the like: not ours to carry */
    return;
  }
  uint64_t delay_ns = (uint64_t)rules.delay_ms[dir] * 1000000ULL;
  int delayed_ack = 0;
  if (v.is_tcp) {
    struct flow *f = flow_of(&v, dir);
    if ((v.flags & F_SYN) && !(v.flags & F_ACK)) f->fin_seen[0] = f->fin_seen[1] = 0; /* a new connection */
    if ((v.flags & F_FIN) && rules.drop_fin[dir] > 0) {
      rules.drop_fin[dir]--;
      stats.dropped_fin[dir]++;
      log_event("drop-fin", dir, &v);
      return;
    }
    if (rules.loss[dir] > 0 && next_random() < rules.loss[dir]) {
      stats.dropped_loss[dir]++;
      log_event("drop-loss", dir, &v);
      return;
    }
    if (v.flags & F_FIN) f->fin_seen[dir] = 1;
    int pure_ack = (v.flags & (F_SYN | F_FIN | F_RST)) == 0 && (v.flags & F_ACK) && v.payload == 0;
    if (pure_ack && rules.ack_delay_ms[dir] > 0 && f->fin_seen[1 - dir]) {
      delay_ns += (uint64_t)rules.ack_delay_ms[dir] * 1000000ULL;
      delayed_ack = 1;
      stats.delayed_ack[dir]++;
      log_event("delay-ack", dir, &v);
    }
    if (v.flags & F_FIN) log_event("fin", dir, &v);
    else if (v.flags & F_RST) log_event("rst", dir, &v);
    else if (trace) log_event("pass", dir, &v);
  }
  if (heap_len == MAX_PENDING) {
    stats.overflow++;
    return;
  }
  struct packet *p = malloc(sizeof *p + len);
  if (!p) die("malloc");
  p->arrived_ns = now_ns();
  p->due_ns = p->arrived_ns + delay_ns;
  p->order = order_counter++;
  p->dir = dir;
  p->delayed_ack = delayed_ack;
  p->len = len;
  memcpy(p->data, data, len);
  heap_push(p);
}

static void deliver_due(int fds[2]) {
  uint64_t now = now_ns();
  while (heap_len > 0 && heap[0]->due_ns <= now) {
    struct packet *p = heap_pop();
    int out = p->dir == AB ? fds[1] : fds[0]; /* A -> B goes out on B's device */
    if (write(out, p->data, p->len) < 0 && errno != EAGAIN && errno != EIO) die("write");
    stats.forwarded[p->dir]++;
    if (now - p->arrived_ns < stats.min_hold_ns[p->dir]) stats.min_hold_ns[p->dir] = now - p->arrived_ns;
    if (p->delayed_ack) {
      struct tcp_view v;
      parse(p->data, p->len, &v);
      log_event("deliver-ack", p->dir, &v);
    }
    free(p);
  }
}

static void read_device(int fds[2], int i) {
  static unsigned char buf[MAX_PACKET];
  for (int burst = 0; burst < 256; burst++) {
    ssize_t len = read(fds[i], buf, sizeof buf);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("read");
    }
    on_packet(i == 0 ? AB : BA, buf, (size_t)len);
  }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int open_tun_in(const char *netns_path, const char *name) {
  int ns = open(netns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) die(netns_path);
  if (setns(ns, CLONE_NEWNET) != 0) die("setns");
  close(ns);
  /* The device is created in the namespace current at open(2) of /dev/net/tun. */
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
  return fd;
}

static void on_signal(int sig) {
  if (sig == SIGUSR1) want_stats = 1;
  else want_exit = 1;
}

static long arg_long(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 0) {
    fprintf(stderr, "tun-relay: bad number %s\n", s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  const char *ns_a = NULL, *ns_b = NULL, *dev = "fdrtun0";
  uint64_t seed = 1;
  long max_seconds = 600;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!val) {
      fprintf(stderr, "tun-relay: %s needs a value\n", k);
      return 2;
    }
    i++;
    if (!strcmp(k, "--netns-a")) ns_a = val;
    else if (!strcmp(k, "--netns-b")) ns_b = val;
    else if (!strcmp(k, "--dev")) dev = val;
    else if (!strcmp(k, "--delay-ab")) rules.delay_ms[AB] = arg_long(val);
    else if (!strcmp(k, "--delay-ba")) rules.delay_ms[BA] = arg_long(val);
    else if (!strcmp(k, "--drop-fin-ab")) rules.drop_fin[AB] = arg_long(val);
    else if (!strcmp(k, "--drop-fin-ba")) rules.drop_fin[BA] = arg_long(val);
    else if (!strcmp(k, "--delay-ack-after-fin-ab")) rules.ack_delay_ms[AB] = arg_long(val);
    else if (!strcmp(k, "--delay-ack-after-fin-ba")) rules.ack_delay_ms[BA] = arg_long(val);
    else if (!strcmp(k, "--loss-ab")) rules.loss[AB] = atof(val);
    else if (!strcmp(k, "--loss-ba")) rules.loss[BA] = atof(val);
    else if (!strcmp(k, "--seed")) seed = (uint64_t)strtoull(val, NULL, 10);
    else if (!strcmp(k, "--max-seconds")) max_seconds = arg_long(val);
    else if (!strcmp(k, "--trace")) trace = arg_long(val) != 0;
    else {
      fprintf(stderr, "tun-relay: unknown option %s\n", k);
      return 2;
    }
  }
  if (!ns_a || !ns_b) {
    fprintf(stderr, "usage: tun-relay --netns-a PATH --netns-b PATH [--dev NAME] [rules]\n");
    return 2;
  }
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
  if (rng_state == 0) rng_state = 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Signals are taken only inside ppoll (which then returns EINTR): none is lost between a check
   * of the flags and the wait. */
  sigset_t blocked, during_poll;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGUSR1);
  sigprocmask(SIG_BLOCK, &blocked, &during_poll);

  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) die("/proc/self/ns/net");
  int fds[2];
  fds[0] = open_tun_in(ns_a, dev);
  fds[1] = open_tun_in(ns_b, dev);
  if (setns(home, CLONE_NEWNET) != 0) die("setns home");
  close(home);

  start_ns = now_ns();
  uint64_t deadline = start_ns + (uint64_t)max_seconds * 1000000000ULL;
  printf("%.3f ready dev=%s delay_ab=%ld delay_ba=%ld drop_fin_ab=%ld drop_fin_ba=%ld ack_delay_ab=%ld "
         "ack_delay_ba=%ld loss_ab=%g loss_ba=%g seed=%llu\n",
         wall_ms(), dev, rules.delay_ms[AB], rules.delay_ms[BA], rules.drop_fin[AB], rules.drop_fin[BA], rules.ack_delay_ms[AB],
         rules.ack_delay_ms[BA], rules.loss[AB], rules.loss[BA], (unsigned long long)seed);

  struct pollfd pfd[2] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
  while (!want_exit) {
    uint64_t now = now_ns();
    if (now >= deadline) {
      printf("%.3f max-seconds reached\n", wall_ms());
      break;
    }
    struct timespec timeout = { .tv_sec = 1, .tv_nsec = 0 };
    if (heap_len > 0) {
      uint64_t wait = heap[0]->due_ns > now ? heap[0]->due_ns - now : 0;
      if (wait < 1000000000ULL) timeout = (struct timespec){ .tv_sec = 0, .tv_nsec = (long)wait };
    }
    int n = ppoll(pfd, 2, &timeout, &during_poll);
    if (n < 0 && errno != EINTR) die("ppoll");
    for (int i = 0; n > 0 && i < 2; i++) {
      if (pfd[i].revents & (POLLERR | POLLNVAL)) {
        fprintf(stderr, "tun-relay: device %d failed\n", i);
        return 1;
      }
      if (pfd[i].revents & POLLIN) read_device(fds, i);
    }
    deliver_due(fds);
    if (want_stats) {
      /* Everything the devices hold now is logged before the stats line: a test that reads up to
       * this line has seen every segment sent before it asked. */
      want_stats = 0;
      read_device(fds, 0);
      read_device(fds, 1);
      print_stats();
    }
  }
  print_stats();
  printf("%.3f exit\n", wall_ms());
  return 0;
}
