package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/handlers/webhooks"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- JSON: /organizations/{orgId}/webhooks ---

func (h *Handler) listWebhooksAPI(c *gin.Context) {
	s := scopeOf(c)
	ws, err := models.ListWebhooks(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	if !s.admin() {
		// Viewers get scheme and host, as on the page: a chat webhook's
		// path is its secret.
		for i := range ws {
			ws[i].URL = models.WebhookHost(ws[i].URL)
		}
	}
	c.JSON(http.StatusOK, jsonList(ws, toWebhookJSON))
}

type webhookRequest struct {
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Enabled *bool    `json:"enabled"`
}

// createWebhookAPI serves POST {url, events} → 201 with the signing secret,
// the only time it is shown.
func (h *Handler) createWebhookAPI(c *gin.Context) {
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	w, secret, err := h.createWebhook(c, scopeOf(c).OrgID, req.URL, req.Events)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := toWebhookJSON(w)
	out.Secret = secret
	c.JSON(http.StatusCreated, out)
}

// createWebhook adds an endpoint once the destination policy allows its URL:
// the logic behind the JSON route and the Notifications form. The secret is
// returned this once.
func (h *Handler) createWebhook(c *gin.Context, org uuid.UUID, url string, events []string) (*models.WebhookEndpoint, string, error) {
	if err := h.webhookPolicy().CheckURL(url); err != nil {
		return nil, "", err
	}
	return models.CreateWebhook(c.Request.Context(), h.db, h.sealer, org, models.WebhookInput{URL: url, Events: events}, h.actor(c))
}

// webhookParam is the request's org and :endpointId.
func (h *Handler) webhookParam(c *gin.Context) (uuid.UUID, uuid.UUID, error) {
	org := scopeOf(c).OrgID
	id, err := pathUUID(c, "endpointId")
	return org, id, err
}

// updateWebhookAPI serves PATCH {enabled}.
func (h *Handler) updateWebhookAPI(c *gin.Context) {
	org, id, err := h.webhookParam(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.Enabled == nil {
		h.fail(c, models.Invalid("enabled", "is required (true or false)"))
		return
	}
	w, err := models.SetWebhookEnabled(c.Request.Context(), h.db, org, id, *req.Enabled, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookJSON(w))
}

func (h *Handler) deleteWebhookAPI(c *gin.Context) {
	org, id, err := h.webhookParam(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := models.DeleteWebhook(c.Request.Context(), h.db, org, id, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// testWebhookAPI serves POST .../test: a test delivery is queued (202).
func (h *Handler) testWebhookAPI(c *gin.Context) {
	org, id, err := h.webhookParam(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := models.EnqueueTest(c.Request.Context(), h.db, org, id, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"queued": true})
}

// webhookDeliveriesAPI serves GET .../deliveries: the endpoint's attempt log.
func (h *Handler) webhookDeliveriesAPI(c *gin.Context) {
	org, id, err := h.webhookParam(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	if _, err := models.GetWebhook(c.Request.Context(), h.db, org, id); err != nil {
		h.fail(c, err)
		return
	}
	as, err := models.ListAttempts(c.Request.Context(), h.db, org, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, jsonList(as, toAttemptJSON))
}

// --- HTML: Settings → Notifications ---

var webhookNotices = map[string]string{
	"test":    "Test delivery queued: see its result under Deliveries.",
	"enable":  "Webhook enabled.",
	"disable": "Webhook disabled.",
	"delete":  "Webhook deleted.",
}

func (h *Handler) notificationsRender(c *gin.Context, s scope, n views.Nav, status int, d views.NotificationsData) {
	ws, err := models.ListWebhooks(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	d.Endpoints, d.CanWrite = ws, s.admin()
	if d.Notice == "" {
		d.Notice = webhookNotices[c.Query("done")]
	}
	h.renderStatus(c, status, views.NotificationsPage(n, d))
}

func (h *Handler) notificationsPage(c *gin.Context) {
	s, n := h.page(c, "Notifications", "settings")
	h.notificationsRender(c, s, n, http.StatusOK, views.NotificationsData{})
}

// notificationsCreate serves POST /settings/notifications; the page it answers
// shows the signing secret once.
func (h *Handler) notificationsCreate(c *gin.Context) {
	s, n := h.page(c, "Notifications", "settings")
	f := views.WebhookForm{URL: c.PostForm("url"), Events: c.PostFormArray("events")}
	if f.Events == nil {
		f.Events = []string{}
	}
	w, secret, err := h.createWebhook(c, s.OrgID, f.URL, f.Events)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		f.Errors = ve.Fields
		h.notificationsRender(c, s, n, http.StatusBadRequest, views.NotificationsData{Form: f})
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	h.notificationsRender(c, s, n, http.StatusOK, views.NotificationsData{NewSecret: &views.NewSecret{Host: models.WebhookHost(w.URL), Secret: secret}})
}

// webhookActionHTML serves POST /settings/notifications/{endpointId}/test|enable|disable|delete.
func (h *Handler) webhookActionHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := scopeOf(c)
		id, err := pathUUID(c, "endpointId")
		if err != nil {
			h.fail(c, err)
			return
		}
		switch action {
		case "test":
			err = models.EnqueueTest(c.Request.Context(), h.db, s.OrgID, id, h.actor(c))
		case "delete":
			err = models.DeleteWebhook(c.Request.Context(), h.db, s.OrgID, id, h.actor(c))
		default:
			_, err = models.SetWebhookEnabled(c.Request.Context(), h.db, s.OrgID, id, action == "enable", h.actor(c))
		}
		if err != nil {
			h.fail(c, err)
			return
		}
		if action == "test" && c.PostForm("back") == "log" {
			seeOther(c, "/settings/notifications/"+id.String()) // the deliveries page's Send test
			return
		}
		seeOther(c, "/settings/notifications?done="+action)
	}
}

// webhookLogPage serves GET /settings/notifications/{endpointId}: its deliveries.
func (h *Handler) webhookLogPage(c *gin.Context) {
	s, n := h.page(c, "Webhook deliveries", "settings")
	id, err := pathUUID(c, "endpointId")
	if err != nil {
		h.fail(c, err)
		return
	}
	w, err := models.GetWebhook(c.Request.Context(), h.db, s.OrgID, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	as, err := models.ListAttempts(c.Request.Context(), h.db, s.OrgID, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.WebhookLogPage(n, *w, as))
}

// webhookPolicy is where this server's webhook deliveries may connect.
func (h *Handler) webhookPolicy() webhooks.Policy {
	return webhooks.Policy{Allow: h.cfg.WebhookAllowCIDRs}
}

// WebhookDeps are what the webhook worker needs from this server: its
// database, the sealer of the endpoints' secrets, the links' base URL, the
// presence window, the destination policy and the delivery counter.
func (h *Handler) WebhookDeps() webhooks.Deps {
	return webhooks.Deps{
		DB: h.db, Log: h.log, Sealer: h.sealer, PublicURL: h.cfg.PublicURL, PresenceWindow: h.cfg.PresenceWindow,
		Policy:    h.webhookPolicy(),
		Delivered: func(outcome string) { h.metrics.deliveries.WithLabelValues(outcome).Inc() },
	}
}
