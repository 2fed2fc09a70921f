/* Item ids: ULID shape, known encoding, strict order within one process. */
#include "../check.h"
#include "gateway/itemid.h"

int main(void)
{
    char id[GW_ITEMID_LEN + 1], prev[GW_ITEMID_LEN + 1] = "";
    const unsigned char zero[10] = {0},
                        ones[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    gw_itemid_encode(id, 0, zero);
    CHECK_STR(id, "00000000000000000000000000");
    gw_itemid_encode(id, 1469918176385ULL, ones);
    CHECK_STR(id, "01ARYZ6S41ZZZZZZZZZZZZZZZZ");
    int ordered = 1;
    for (int i = 0; i < 10000; i++) {
        CHECK_INT(gw_itemid_new(id), 0);
        if (strlen(id) != GW_ITEMID_LEN || strcmp(id, prev) <= 0)
            ordered = 0;
        memcpy(prev, id, sizeof(id));
    }
    CHECK(ordered);
    CHECK(strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == GW_ITEMID_LEN);
    CHECK_DONE();
}
