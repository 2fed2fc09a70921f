/* ULID generation. Monotonicity inside one millisecond is kept by incrementing the random
 * part, as the ULID specification describes, under a mutex shared by the HTTP threads. */
#include "itemid.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void gw_itemid_encode(char *out, unsigned long long ms, const unsigned char rnd[10])
{
    for (int i = 9; i >= 0; i--) {
        out[i] = alphabet[ms & 31];
        ms >>= 5;
    }
    /* 80 bits in 16 characters of 5 bits, most significant first. */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5, v = 0;
        for (int b = 0; b < 5; b++, bit++)
            v = (v << 1) | ((rnd[bit / 8] >> (7 - bit % 8)) & 1);
        out[10 + i] = alphabet[v];
    }
    out[GW_ITEMID_LEN] = '\0';
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long last_ms;
static unsigned char last_rnd[10];

int gw_itemid_new(char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms =
        (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    unsigned char rnd[10];
    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        ms = last_ms;
        memcpy(rnd, last_rnd, sizeof(rnd));
        for (int i = 9; i >= 0; i--)
            if (++rnd[i] != 0)
                break;
    } else if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    last_ms = ms;
    memcpy(last_rnd, rnd, sizeof(rnd));
    pthread_mutex_unlock(&lock);
    gw_itemid_encode(out, ms, rnd);
    return 0;
}
