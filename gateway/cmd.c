/* Command lifecycle and the mailbox between HTTP threads and the loop thread. */
#include "cmd.h"

#include "loop.h"
#include "stream.h"

#include <stdlib.h>
#include <string.h>

struct gw_cmd *gw_cmd_new(enum gw_op op)
{
    struct gw_cmd *cmd = calloc(1, sizeof(*cmd));
    if (cmd != NULL)
        cmd->op = op;
    return cmd;
}

void gw_cmd_free(struct gw_cmd *cmd)
{
    if (cmd == NULL)
        return;
    free(cmd->service);
    free(cmd->node);
    free(cmd->item_id);
    free(cmd->payload);
    json_decref(cmd->config);
    free(cmd->sub_id);
    free(cmd->letter);
    json_decref(cmd->args);
    gw_stream_unref(cmd->stream);
    json_decref(cmd->result);
    free(cmd);
}

json_t *gw_problem_new(int status, const char *title, const char *detail, const char *condition)
{
    json_t *p = json_object();
    if (p == NULL)
        return NULL;
    const char *type = "about:blank";
    if (condition != NULL)
        type = "urn:pubsubgw:problem:xmpp-error";
    else if (status == 400)
        type = "urn:pubsubgw:problem:invalid-request";
    else if (status == 503 && title != NULL && strcmp(title, "Store unavailable") == 0)
        type = "urn:pubsubgw:problem:store-unavailable";
    else if (status == 503)
        type = "urn:pubsubgw:problem:xmpp-unavailable";
    else if (status == 504)
        type = "urn:pubsubgw:problem:timeout";
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(title));
    json_object_set_new(p, "status", json_integer(status));
    if (detail != NULL)
        json_object_set_new(p, "detail", json_string(detail));
    if (condition != NULL)
        json_object_set_new(p, "xmpp_condition", json_string(condition));
    return p;
}

static void complete(struct gw_cmd *cmd)
{
    if (cmd->done != NULL)
        cmd->done(cmd);
}

void gw_cmd_finish(struct gw_cmd *cmd, int status, json_t *body)
{
    cmd->status = status;
    json_decref(cmd->result);
    cmd->result = body;
    complete(cmd);
}

void gw_cmd_fail(struct gw_cmd *cmd, int status, const char *title, const char *detail,
                 const char *condition)
{
    cmd->status = status;
    json_decref(cmd->result);
    cmd->result = gw_problem_new(status, title, detail, condition);
    complete(cmd);
}

void gw_cmd_fail_unavailable(struct gw_cmd *cmd, const char *detail)
{
    cmd->retry_after = 5;
    gw_cmd_fail(cmd, 503, "XMPP session unavailable", detail, NULL);
}

int gw_mailbox_init(struct gw_mailbox *mb, struct gw_loop *loop)
{
    mb->head = mb->tail = NULL;
    mb->closed = 0;
    mb->loop = loop;
    return pthread_mutex_init(&mb->lock, NULL) == 0 ? 0 : -1;
}

void gw_mailbox_destroy(struct gw_mailbox *mb)
{
    pthread_mutex_destroy(&mb->lock);
}

int gw_mailbox_post(struct gw_mailbox *mb, struct gw_cmd *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->lock);
        return -1;
    }
    int was_empty = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = cmd;
    else
        mb->head = cmd;
    mb->tail = cmd;
    pthread_mutex_unlock(&mb->lock);
    /* One wake-up per batch: a non-empty mailbox already has one pending. */
    if (was_empty)
        gw_loop_wake(mb->loop);
    return 0;
}

struct gw_cmd *gw_mailbox_take(struct gw_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    struct gw_cmd *list = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    return list;
}

struct gw_cmd *gw_mailbox_close(struct gw_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    mb->closed = 1;
    struct gw_cmd *list = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    return list;
}
