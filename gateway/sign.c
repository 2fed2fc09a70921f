/* Signing with OpenSSL's HMAC and base64 (EVP_EncodeBlock/EVP_DecodeBlock): no hand-written
 * cryptography. */
#include "sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_random(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int gw_secret_decode(const char *secret, unsigned char *key)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return -1;
    const char *b64 = secret + 6;
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 4 * ((GW_KEY_MAX + 2) / 3))
        return -1;
    unsigned char buf[GW_KEY_MAX + 3];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (len >= 1 && b64[len - 1] == '=')
        n--;
    if (len >= 2 && b64[len - 2] == '=')
        n--;
    if (n < GW_KEY_MIN || n > GW_KEY_MAX)
        return -1;
    memcpy(key, buf, (size_t)n);
    return n;
}

int gw_secret_generate(char *out, size_t outlen)
{
    unsigned char key[32];
    char b64[64];
    if (outlen < 6 + 45 || gw_random(key, sizeof(key)) != 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)b64, key, sizeof(key));
    snprintf(out, outlen, "whsec_%s", b64);
    return 0;
}

int gw_sign(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
            const char *body, size_t body_len, char *out, size_t outlen)
{
    char head[160];
    int hlen = snprintf(head, sizeof(head), "%s.%lld.", id, timestamp);
    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        return -1;
    char *msg = malloc((size_t)hlen + body_len);
    if (msg == NULL)
        return -1;
    memcpy(msg, head, (size_t)hlen);
    memcpy(msg + hlen, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    unsigned char *r = HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
                            (size_t)hlen + body_len, mac, &maclen);
    free(msg);
    if (r == NULL || outlen < 3 + 4 * ((maclen + 2) / 3) + 1)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return 0;
}

int gw_hmac_hex(const unsigned char *key, size_t keylen, const char *data, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, mac, &maclen) ==
        NULL)
        return -1;
    for (unsigned int i = 0; i < maclen; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

void gw_sha256(const void *data, size_t len, unsigned char *out)
{
    SHA256(data, len, out);
}

int gw_const_eq_n(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int gw_const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}
