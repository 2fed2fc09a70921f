/* Logs an operator can use and nothing secret in them: an access line per request (method,
 * path, status, bytes, duration, request id, token name), X-Request-Id taken or generated and
 * returned, the request id in the lines the request causes, a line per delivery attempt, and
 * --log-format json giving one JSON object per line. Tokens, webhook secrets, hook secrets and
 * the XMPP password are grepped for in the whole log. */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const token = "logs-token-secret-value-0001";
static const char *const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static void run(int json)
{
    struct it_gw gw;
    const char *extra[] = {"--api-token",
                           "logs-token-secret-value-0001 name=ci-bot",
                           "--hook-secret",
                           "*=hook-secret-value",
                           "--callback-allow",
                           "127.0.0.0/8",
                           "--log-level",
                           "info",
                           "--log-format",
                           json ? "json" : "text",
                           NULL};
    CHECK_INT(it_gw_start(&gw, "gw13@localhost", "gw13", it_server_port(), extra, 1), 0);
    char auth[120], url[600], body[600];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *node = it_unique("logs");
    struct it_resp r;
    snprintf(url, sizeof(url), "%s/v1/nodes", gw.base);
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    const char *h1[] = {auth, "X-Request-Id: client-chosen-42"};
    it_http_ex("POST", url, "application/json", body, strlen(body), h1, 2, &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(r.request_id, "client-chosen-42");
    it_resp_free(&r);
    const char *h2[] = {auth, "X-Request-Id: bad id with spaces"};
    snprintf(url, sizeof(url), "%s/v1/nodes/%s", gw.base, node);
    it_http_ex("GET", url, NULL, NULL, 0, h2, 2, &r);
    CHECK_INT(r.status, 200);
    CHECK(strncmp(r.request_id, "req_", 4) == 0); /* not taken: one was made */
    char made[80];
    snprintf(made, sizeof(made), "%s", r.request_id);
    it_resp_free(&r);

    struct it_receiver *rc = it_receiver_start(IT_FAIL_FIRST, 1); /* 500, then 200 */
    snprintf(url, sizeof(url), "%s/v1/subscriptions", gw.base);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"secret\":\"%s\"}", node,
             it_receiver_url(rc), whsec);
    const char *h3[] = {auth, "X-Request-Id: sub-create-7"};
    it_http_ex("POST", url, "application/json", body, strlen(body), h3, 2, &r);
    CHECK_INT(r.status, 201);
    char sub[80];
    snprintf(sub, sizeof(sub), "%s", json_string_value(json_object_get(r.json, "id")) ?: "");
    it_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items?id=one", gw.base, node);
    it_http_ex("POST", url, "application/json", "{\"a\":1}", 7, h1, 1, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(rc, 1, 5000), 1);
    /* The attempts log: the failed attempt and the delivery, newest first, paged. The receiver
     * counts the delivery when the request arrives; the gateway logs the attempt once it has
     * read the answer, a moment later. */
    snprintf(url, sizeof(url), "%s/v1/subscriptions/%s/attempts", gw.base, sub);
    for (int k = 0;; k++) {
        it_http_ex("GET", url, NULL, NULL, 0, h1, 1, &r);
        if (json_array_size(json_object_get(r.json, "attempts")) >= 2 || k == 100)
            break;
        it_resp_free(&r);
        usleep(20000);
    }
    CHECK_INT(r.status, 200);
    json_t *att = json_object_get(r.json, "attempts");
    CHECK_INT(json_array_size(att), 2);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(att, 0), "status")), 200);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(att, 0), "attempt")), 2);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(att, 1), "status")), 500);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(att, 1), "attempt")), 1);
    CHECK(json_is_string(json_object_get(json_array_get(att, 1), "answer")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(att, 0), "event_id")),
              json_string_value(json_object_get(json_array_get(att, 1), "event_id")));
    CHECK(json_is_null(json_object_get(r.json, "next")));
    it_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/subscriptions/%s/attempts?limit=1", gw.base, sub);
    it_http_ex("GET", url, NULL, NULL, 0, h1, 1, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "attempts")), 1);
    char next[64];
    snprintf(next, sizeof(next), "%s", json_string_value(json_object_get(r.json, "next")) ?: "x");
    it_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/subscriptions/%s/attempts?limit=1&before=%s", gw.base, sub,
             next);
    it_http_ex("GET", url, NULL, NULL, 0, h1, 1, &r);
    CHECK_INT(json_integer_value(json_object_get(
                  json_array_get(json_object_get(r.json, "attempts"), 0), "status")),
              500);
    it_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/subscriptions/%s/attempts?limit=0", gw.base, sub);
    it_http_ex("GET", url, NULL, NULL, 0, h1, 1, &r);
    it_check_problem(&r, 400, "limit");
    it_resp_free(&r);
    it_get(&gw, "/v1/nodes", &r); /* no token: 401, logged too */
    CHECK_INT(r.status, 401);
    it_resp_free(&r);
    usleep(200000);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    it_receiver_stop(rc);

    char *log = slurp(gw.log);
    char want[300];
    if (json) {
        /* every line is a JSON object */
        int lines = 0, objects = 0;
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
            lines++;
            json_t *o = json_loads(line, 0, NULL);
            if (o && json_object_get(o, "ts") && json_object_get(o, "level"))
                objects++;
            if (o && strcmp(json_string_value(json_object_get(o, "msg")) ?: "", "http") == 0 &&
                json_integer_value(json_object_get(o, "status")) == 201 &&
                strcmp(json_string_value(json_object_get(o, "request_id")) ?: "",
                       "client-chosen-42") == 0) {
                CHECK_STR(json_string_value(json_object_get(o, "method")), "POST");
                CHECK_STR(json_string_value(json_object_get(o, "token")), "ci-bot");
                CHECK(json_integer_value(json_object_get(o, "bytes")) > 0);
                CHECK(json_is_number(json_object_get(o, "duration_ms")));
            }
            json_decref(o);
        }
        CHECK(lines > 5);
        CHECK_INT(objects, lines);
        free(log);
        log = slurp(gw.log);
    } else {
        snprintf(want, sizeof(want), "http POST /v1/nodes 201 ");
        CHECK(strstr(log, want) != NULL);
        CHECK(strstr(log, "rid=client-chosen-42 token=ci-bot") != NULL);
        snprintf(want, sizeof(want), "rid=%s token=ci-bot", made);
        CHECK(strstr(log, want) != NULL);
        CHECK(strstr(log, "http GET /v1/nodes 401 ") != NULL);
        CHECK(strstr(log, "token=-") != NULL);
        CHECK(strstr(log, "rid=sub-create-7") != NULL); /* in the line the request caused */
        CHECK(strstr(log, " attempt 1: HTTP 500 in ") != NULL);
        CHECK(strstr(log, " attempt 2: HTTP 200 in ") != NULL);
    }
    /* nothing secret */
    CHECK(strstr(log, token) == NULL);
    CHECK(strstr(log, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == NULL);
    CHECK(strstr(log, "hook-secret-value") == NULL);
    CHECK(strstr(log, "gw13\"") == NULL && strstr(log, " gw13 ") == NULL);
    free(log);
}

int main(void)
{
    run(0);
    run(1);
    CHECK_DONE();
}
