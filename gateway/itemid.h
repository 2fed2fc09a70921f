/* Item ids the gateway assigns: ULIDs (26 characters of Crockford base32, 48 bits of
 * millisecond time then 80 random bits), so they sort by time and never repeat. */
#ifndef GW_ITEMID_H
#define GW_ITEMID_H

#define GW_ITEMID_LEN 26

/* Thread-safe. Writes a NUL-terminated id into out (at least GW_ITEMID_LEN + 1 bytes). Ids made
 * in the same millisecond by this process are strictly increasing. Returns 0 or -1. */
int gw_itemid_new(char *out);

/* Encodes a given time and 80-bit random part; the pure core of gw_itemid_new(). */
void gw_itemid_encode(char *out, unsigned long long ms, const unsigned char rnd[10]);

#endif
