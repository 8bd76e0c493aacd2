// A loopback server for the churn benchmarks: accept, write a greeting, close (the peer closes
// first). One thread, blocking calls: as cheap per connection as a server gets, so that the
// client under test is what the benchmark measures. Prints its port, then serves until killed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(argc > 1 ? atoi(argv[1]) : 0);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) { perror("bind/listen"); return 1; }
  socklen_t len = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &len);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  static const char greeting[] = "hello\n";
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    (void)!write(c, greeting, sizeof greeting - 1);
    close(c);
  }
}
