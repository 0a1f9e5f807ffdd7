/* The physical floor of an exec HTTP check, for bench/probe-exec.sh: connect to an IPv4
 * loopback peer, send the request the probe sends, read the status line, print one line, exit
 * 0 (status below 400) or 1. Socket timeouts bound every step, as a check's deadline must.
 * Usage: exec_floor IPV4 PORT PATH */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        puts("unhealthy: usage: exec_floor IPV4 PORT PATH");
        return 1;
    }
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    struct timeval timeout = {.tv_sec = 10};
    char request[512], response[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int length = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: curl-healthcheck\r\n"
                          "Accept: */*\r\nConnection: close\r\n\r\n",
                          argv[3], argv[1], argv[2]);
    ssize_t got;
    if (inet_pton(AF_INET, argv[1], &peer.sin_addr) != 1 || fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) ||
        connect(fd, (struct sockaddr *)&peer, sizeof peer) ||
        write(fd, request, length) != length ||
        (got = read(fd, response, sizeof response - 1)) < 12 ||
        strncmp(response, "HTTP/1.", 7)) {
        puts("unhealthy: no HTTP response");
        return 1;
    }
    int status = atoi(response + 9);
    printf("%s: %d %s:%s\n", status < 400 ? "healthy" : "unhealthy", status, argv[1], argv[2]);
    return status >= 400;
}
