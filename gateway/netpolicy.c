/* Address policy for outbound callbacks (SSRF protection). */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_cidr_parse(const char *text, struct gw_cidr *out)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, text, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    int max;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash != NULL) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || p < 0 || p > max)
            return -1;
        out->prefix = (int)p;
    }
    return 0;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static int in_list(int family, const unsigned char *a, const struct gw_cidr *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].family == family && prefix_match(a, list[i].addr, list[i].prefix))
            return 1;
    return 0;
}

/* Special-purpose IPv4 ranges (RFC 6890 and friends) that a callback must not reach. */
static int v4_blocked(const unsigned char *a)
{
    static const struct {
        unsigned char net[4];
        int prefix;
    } blocked[] = {
        {{0, 0, 0, 0}, 8},      {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10},
        {{127, 0, 0, 0}, 8},    {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
        {{192, 0, 0, 0}, 24},   {{192, 0, 2, 0}, 24},   {{192, 88, 99, 0}, 24},
        {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15},  {{198, 51, 100, 0}, 24},
        {{203, 0, 113, 0}, 24}, {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},
    };
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
        if (prefix_match(a, blocked[i].net, blocked[i].prefix))
            return 1;
    return 0;
}

int gw_addr_allowed(const struct sockaddr *sa, const struct gw_cidr *allow, size_t nallow)
{
    if (sa->sa_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        return in_list(AF_INET, a, allow, nallow) || !v4_blocked(a);
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (in_list(AF_INET6, a, allow, nallow))
        return 1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const unsigned char compat[12] = {0};
    static const unsigned char nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    /* Forms that carry an IPv4 address are judged by it. */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
        (memcmp(a, compat, 12) == 0 && (a[12] | a[13]) != 0))
        return in_list(AF_INET, a + 12, allow, nallow) || !v4_blocked(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4 2002:V4ADDR::/48 */
        return in_list(AF_INET, a + 2, allow, nallow) || !v4_blocked(a + 2);
    static const unsigned char zero[16] = {0};
    int loopback = memcmp(a, zero, 15) == 0 && a[15] == 1;
    int unspecified = memcmp(a, zero, 16) == 0;
    int ula = (a[0] & 0xFE) == 0xFC;                        /* fc00::/7 (incl. fd00:ec2::254) */
    int link_local = a[0] == 0xFE && (a[1] & 0xC0) == 0x80; /* fe80::/10 */
    int site_local = a[0] == 0xFE && (a[1] & 0xC0) == 0xC0; /* fec0::/10 */
    int multicast = a[0] == 0xFF;
    int documentation = a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8;
    int discard = memcmp(a, "\x01\x00\x00\x00\x00\x00\x00\x00", 8) == 0; /* 100::/64 */
    return !(loopback || unspecified || ula || link_local || site_local || multicast ||
             documentation || discard);
}

int gw_addr_is_loopback_text(const char *host)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        return memcmp(a, one, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
    }
    return 0;
}

int gw_url_allowed(const char *url, const struct gw_cidr *allow, size_t nallow, char *err,
                   size_t errlen)
{
    const char *host = strstr(url, "://");
    if (host == NULL) {
        snprintf(err, errlen, "not a URL");
        return 0;
    }
    host += 3;
    size_t alen = strcspn(host, "/?#");
    char name[300];
    const char *end;
    if (host[0] == '[') {
        end = memchr(host, ']', alen);
        if (end == NULL || (size_t)(end - host - 1) >= sizeof(name)) {
            snprintf(err, errlen, "malformed host");
            return 0;
        }
        memcpy(name, host + 1, (size_t)(end - host - 1));
        name[end - host - 1] = '\0';
    } else {
        end = memchr(host, ':', alen);
        size_t hlen = end ? (size_t)(end - host) : alen;
        if (hlen >= sizeof(name)) {
            snprintf(err, errlen, "host name too long");
            return 0;
        }
        memcpy(name, host, hlen);
        name[hlen] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %.200s: %s", name, gai_strerror(rc));
        return 0;
    }
    int ok = 1;
    for (struct addrinfo *ai = res; ai && ok; ai = ai->ai_next) {
        if (!gw_addr_allowed(ai->ai_addr, allow, nallow)) {
            char text[64] = "?";
            const void *a = ai->ai_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            inet_ntop(ai->ai_family, a, text, sizeof(text));
            snprintf(err, errlen,
                     "%.200s resolves to %s, a loopback, private or otherwise reserved "
                     "address (allow it with --callback-allow)",
                     name, text);
            ok = 0;
        }
    }
    freeaddrinfo(res);
    return ok;
}
