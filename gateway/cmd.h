/* Commands: the unit of work an HTTP thread hands to the loop thread, and the mailbox that
 * carries them. A command holds validated request data in, and a status plus a JSON body out;
 * the poster's done callback runs on the loop thread once the result is set. */
#ifndef GW_CMD_H
#define GW_CMD_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

struct gw_loop;
struct gw_stream;
struct gw_token;

enum gw_op {
    GW_OP_NODES_LIST = 0,
    GW_OP_NODE_CREATE,
    GW_OP_NODE_GET,
    GW_OP_NODE_DELETE,
    GW_OP_PUBLISH,
    GW_OP_ITEMS_GET,
    GW_OP_ITEM_GET,
    GW_OP_ITEM_RETRACT,
    GW_OP_CONFIG_GET,
    GW_OP_CONFIG_SET,
    GW_OP_PURGE,
    GW_OP_OWNER_SUBS_GET,
    GW_OP_OWNER_SUBS_SET,
    GW_OP_AFFILIATIONS_GET,
    GW_OP_AFFILIATIONS_SET,
    /* XMPP requests the gateway makes for itself (webhook subscriptions) */
    GW_OP_SUBSCRIBE,
    GW_OP_UNSUBSCRIBE,
    GW_OP_SUBSCRIPTIONS,
    /* Webhook registry, executed by gateway/webhooks.c */
    GW_OP_SUB_CREATE,
    GW_OP_SUB_LIST,
    GW_OP_SUB_GET,
    GW_OP_SUB_DELETE,
    GW_OP_DEAD_LIST,
    GW_OP_DEAD_RETRY,
    GW_OP_ATTEMPTS_LIST,
    GW_OP_STREAM_OPEN,
    GW_OP_WEBSUB, /* POST /websub */
    GW_OP_FEED_CREATE,
    GW_OP_FEED_LIST,
    GW_OP_FEED_GET,
    GW_OP_FEED_DELETE,
    GW_OP_DEAD_RETRY_ALL,
    GW_OP_SUB_TEST,
};

/* 1 for the operations gateway/webhooks.c executes, 0 for XMPP requests. */
#define GW_OP_IS_REGISTRY(op) ((op) >= GW_OP_SUB_CREATE)
/* 1 when the operation cannot be done without the XMPP session. */
#define GW_OP_NEEDS_XMPP(op)                                                                       \
    (!GW_OP_IS_REGISTRY(op) || (op) == GW_OP_SUB_CREATE || (op) == GW_OP_STREAM_OPEN ||            \
     (op) == GW_OP_WEBSUB)

enum gw_payload_kind { GW_PAYLOAD_JSON = 0, GW_PAYLOAD_XML };

struct gw_cmd {
    enum gw_op op;
    char *service; /* NULL: the configured default service */
    char *node;    /* NULL only for an instant node */
    char *item_id; /* publish, item get, retract */
    enum gw_payload_kind payload_kind;
    char *payload;            /* publish: compact JSON text or one XML element, NUL-terminated */
    json_t *config;           /* node create: form fields, may be NULL */
    int max_items;            /* items get: 0 = all */
    char *sub_id;             /* webhook subscription id */
    char *letter;             /* dead letter id */
    struct gw_stream *stream; /* stream open: the client's stream (one reference) */
    char rid[72];             /* the HTTP request's id (X-Request-Id), "" for our own */
    const struct gw_token *token; /* the API token of the request, NULL when none is configured:
                                   * a token limited to nodes sees and touches only those */
    json_t *args;                 /* validated request object: subscription create; owner lists
                                   * ("subscriptions"/"affiliations"); items ("ids", "max", "after",
                                   * "before"); node delete ("redirect"); attempts ("limit",
                                   * "before") */

    int status;      /* HTTP status of the result */
    json_t *result;  /* success body or problem object, or NULL for no body */
    int retry_after; /* seconds for Retry-After, 0 for none */

    void (*done)(struct gw_cmd *cmd); /* runs on the loop thread */
    void *done_arg;
    struct gw_cmd *next;
};

/* Returns a zeroed command, or NULL. Free with gw_cmd_free(), which frees every field. */
struct gw_cmd *gw_cmd_new(enum gw_op op);
void gw_cmd_free(struct gw_cmd *cmd);

/* Builds an RFC 9457 problem object; condition may be NULL. Caller owns the result. */
json_t *gw_problem_new(int status, const char *title, const char *detail, const char *condition);

/* Sets the result (takes the reference to body, which may be NULL: success body or a problem
 * object) and completes. */
void gw_cmd_finish(struct gw_cmd *cmd, int status, json_t *body);
/* Sets a problem result and completes. */
void gw_cmd_fail(struct gw_cmd *cmd, int status, const char *title, const char *detail,
                 const char *condition);
/* Fails with 503 and Retry-After: the XMPP session is down. */
void gw_cmd_fail_unavailable(struct gw_cmd *cmd, const char *detail);

struct gw_mailbox {
    pthread_mutex_t lock;
    struct gw_cmd *head, *tail;
    int closed;
    struct gw_loop *loop;
};

int gw_mailbox_init(struct gw_mailbox *mb, struct gw_loop *loop);
void gw_mailbox_destroy(struct gw_mailbox *mb);

/* Thread-safe. Queues cmd and wakes the loop; returns 0, or -1 when the mailbox is closed
 * (the caller still owns cmd and must answer it). */
int gw_mailbox_post(struct gw_mailbox *mb, struct gw_cmd *cmd);

/* Loop thread: takes every queued command, oldest first (a NULL-terminated list via next). */
struct gw_cmd *gw_mailbox_take(struct gw_mailbox *mb);

/* Loop thread: refuses further posts and returns what is still queued. */
struct gw_cmd *gw_mailbox_close(struct gw_mailbox *mb);

#endif
