/* The replay window of signed inbound hooks: redelivery under the same id passes, another id or
 * none is a replay, entries expire with the window and are bounded in number. */
#include "../check.h"
#include "http/replay.h"

int main(void)
{
    struct gw_replay *rp = gw_replay_new(1000, 3);
    CHECK(rp != NULL);
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", "d1", 0), 0);
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", "d1", 10), 0); /* the sender's redelivery */
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", "d2", 20), 1); /* another id */
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", NULL, 30), 1); /* none */
    CHECK_INT(gw_replay_check(rp, "m", "sha256=aa", "d2", 40), 0); /* another node */
    CHECK_INT(gw_replay_check(rp, "n", "sha256=bb", NULL, 50), 0); /* no id: once */
    CHECK_INT(gw_replay_check(rp, "n", "sha256=bb", NULL, 60), 1);
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", "d3", 1500), 0); /* past the window */
    /* forgotten after a failure on our side: the retry passes */
    gw_replay_forget(rp, "n", "sha256=aa");
    CHECK_INT(gw_replay_check(rp, "n", "sha256=aa", "d4", 1600), 0);
    /* bounded: with 3 entries at most, the oldest goes */
    CHECK_INT(gw_replay_check(rp, "x", "s1", NULL, 1700), 0);
    CHECK_INT(gw_replay_check(rp, "x", "s2", NULL, 1700), 0);
    CHECK_INT(gw_replay_check(rp, "x", "s3", NULL, 1700), 0);
    CHECK_INT(gw_replay_check(rp, "x", "s1", NULL, 1700), 1);
    CHECK_INT(gw_replay_check(rp, "x", "s4", NULL, 1700), 0);
    CHECK_INT(gw_replay_check(rp, "x", "s1", NULL, 1700), 0); /* evicted, so accepted again */
    CHECK_INT(gw_replay_check(rp, "x", "s4", NULL, 1700), 1);
    gw_replay_free(rp);
    CHECK_DONE();
}
