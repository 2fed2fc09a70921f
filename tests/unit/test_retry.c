/* Retry delays: Retry-After honoured for 429/503 and clamped before any arithmetic (a huge value
 * would overflow), exponential backoff with jitter otherwise. */
#include "../check.h"
#include "gateway/config.h"
#include "gateway/webhooks_int.h"

#include <limits.h>

int main(void)
{
    struct gw_config cfg = {0};
    cfg.retry_initial_ms = 1000;
    cfg.retry_max_interval_ms = 3600000;
    CHECK_INT(gw_retry_delay_ms(&cfg, 1, 503, 7), 7000);
    CHECK_INT(gw_retry_delay_ms(&cfg, 1, 429, 3600), 3600000);
    CHECK_INT(gw_retry_delay_ms(&cfg, 1, 429, 86400), 3600000);
    CHECK_INT(gw_retry_delay_ms(&cfg, 1, 503, LONG_MAX), 3600000);
    CHECK_INT(gw_retry_delay_ms(&cfg, 1, 503, LONG_MAX / 1000 + 1), 3600000);
    int64_t d = gw_retry_delay_ms(&cfg, 1, 500, 99); /* Retry-After only for 429 and 503 */
    CHECK(d >= 800 && d <= 1200);
    d = gw_retry_delay_ms(&cfg, 3, 0, 0);
    CHECK(d >= 3200 && d <= 4800);
    d = gw_retry_delay_ms(&cfg, 40, 0, 0);
    CHECK(d >= 2880000 && d <= 4320000);
    CHECK_DONE();
}
