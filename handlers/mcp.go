package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentroster/agentroster/models"
)

// /mcp is the runtime API over the Model Context Protocol (Streamable HTTP,
// the official Go SDK): the same calls as the JSON runtime routes, as tools,
// and the onboarding documents as resources. Each tool calls the function of
// runtime.go its JSON route calls.
//
// Authentication happens twice. The route's access (runtimeKey) checks the
// key of every HTTP request before the SDK sees it: a missing, unknown,
// revoked, disabled or expired key is a 401 with WWW-Authenticate and no MCP
// exchange. Then every tool call and resource read works out its key again
// from that call's own headers (req.Extra.Header), never from the session:
// the session's context belongs to the request that opened it. The SDK also
// binds a session to the key that opened it, so another key presenting a
// known session id is refused (403).

const (
	mcpPath = "/mcp"
	// mcpSessionIdle closes a session no request has used for this long.
	mcpSessionIdle = 30 * time.Minute
	// Headers the /mcp route sets on the request it hands to the SDK, so a
	// tool call knows the client's address and the request id (a client's
	// own values of these headers are replaced).
	hdrClientIP  = "X-Agentroster-Client-Ip"
	hdrRequestID = "X-Agentroster-Request-Id"
	// onboardingURI prefixes a team id in the URI of its onboarding resource.
	onboardingURI = "onboarding://team/"
)

// newMCP builds the MCP server and its HTTP handler.
func (h *Handler) newMCP() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "agentroster", Title: "Agent Roster", Version: "1"}, &mcp.ServerOptions{
		Instructions: "Agent Roster: join an organization, wait for an operator's approval, report presence and read " +
			"your permissions and your team's onboarding document. Call whoami first.",
		Capabilities: &mcp.ServerCapabilities{},
	})
	h.addTools(s)
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "onboarding", Title: "Team onboarding document", MIMEType: "text/markdown",
		URITemplate: onboardingURI + "{teamId}",
		Description: "The onboarding document (markdown) of a team of the key's organization.",
	}, h.readOnboarding)
	// resources/list answers the concrete onboarding resources of the
	// caller's teams: they depend on the key, so the server's own (static)
	// list cannot hold them.
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != "resources/list" {
				return next(ctx, method, req)
			}
			return h.listOnboarding(ctx, req)
		}
	})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		SessionTimeout: mcpSessionIdle,
		// The SDK refuses a loopback connection whose Host is not loopback,
		// against DNS rebinding. Behind a reverse proxy on the same machine
		// every request looks like that; the protection stays on when the
		// server's public URL is itself a loopback one. Every request here
		// needs an API key anyway, which a rebinding page does not have.
		DisableLocalhostProtection: !loopbackURL(h.cfg.PublicURL),
		MaxRequestBodyBytes:        maxFormBody,
	})
}

// loopbackURL reports whether u names a loopback host.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Hostname() == "" {
		return true
	}
	if p.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback()
}

// mcpEndpoint serves /mcp (POST, GET and DELETE) once the route's access has
// checked the key: it binds the request to the key for the SDK's session
// check and hands it over.
func (h *Handler) mcpEndpoint() gin.HandlerFunc {
	sdk := h.newMCP()
	return func(c *gin.Context) {
		k := currentKey(c)
		r := c.Request
		if r.Method == http.MethodGet {
			// The session's stream of server messages ends on shutdown,
			// like /events, so it does not hold the drain.
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(h.ctx, cancel)
			defer stop()
			r = r.WithContext(ctx)
		}
		r.Header.Set(hdrClientIP, c.ClientIP())
		r.Header.Set(hdrRequestID, c.GetString(ctxRequestID))
		// The SDK takes the session's owner from auth.TokenInfo, which only
		// its bearer middleware may set: run it on a copy of the request
		// whose token is the key's id, then serve the original request in
		// the context it produced.
		bind := auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
			return &auth.TokenInfo{UserID: "key:" + k.ID.String()}, nil
		}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})
		probe := r.Clone(r.Context())
		probe.Header.Set("Authorization", "Bearer "+k.ID.String())
		bind(http.HandlerFunc(func(w http.ResponseWriter, bound *http.Request) {
			sdk.ServeHTTP(w, r.WithContext(bound.Context()))
		})).ServeHTTP(c.Writer, probe)
	}
}

// mcpCall is the caller of one tool call or resource read, from that call's
// own headers: the key is checked again (a key revoked mid-session stops at
// once), with the failed-key rate limit of the JSON routes.
func (h *Handler) mcpCall(ctx context.Context, req mcp.Request) (keyCall, error) {
	extra := req.GetExtra()
	if extra == nil || extra.Header == nil {
		return keyCall{}, errUnauthenticated
	}
	hd := extra.Header
	ip := hd.Get(hdrClientIP)
	k, _, err := h.liveKeyOf(ctx, hd.Get("Authorization"), ip)
	if err != nil {
		return keyCall{}, err
	}
	a := models.Actor{Type: "runtime", ID: k.ID.String(), Label: k.Prefix, IP: ip, RequestID: hd.Get(hdrRequestID)}
	if k.AgentID != nil {
		a.Type, a.Label = "agent", *k.AgentID
	}
	if s := req.GetSession(); s != nil {
		a.MCPSession = s.ID()
	}
	return keyCall{key: k, actor: a}, nil
}

// toolError is the result of a refused tool call: isError, a text naming the
// JSON route's error code, and that error body as structured content.
func toolError(err error) *mcp.CallToolResult {
	status, code, message, details := classify(err)
	body := map[string]any{"code": code, "message": message, "status": status}
	if details != nil {
		body["details"] = details
	}
	return &mcp.CallToolResult{
		IsError:           true,
		Content:           []mcp.Content{&mcp.TextContent{Text: code + ": " + message}},
		StructuredContent: map[string]any{"error": body},
	}
}

// tool adds a tool whose handler runs with the call's checked key and a
// request deadline; its error becomes a toolError result, its value the
// structured content (with its JSON as the text item).
func tool[In any](h *Handler, s *mcp.Server, t *mcp.Tool, run func(ctx context.Context, cl keyCall, in In) (any, error)) {
	mcp.AddTool(s, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		cl, err := h.mcpCall(ctx, req)
		refuse := func(err error) (*mcp.CallToolResult, any, error) {
			if status, _, _, _ := classify(err); status >= 500 {
				h.log.Error("mcp tool failed", "tool", t.Name, "err", err, "request_id", cl.actor.RequestID)
			}
			return toolError(err), nil, nil
		}
		if err != nil {
			return refuse(err)
		}
		if field, bad := badJSONText(req.Params.Arguments, ""); bad {
			// As rejectBadText does for the JSON routes: neither can reach a
			// text column.
			return refuse(models.Invalid(field, badTextMessage))
		}
		out, err := run(ctx, cl, in)
		if err != nil {
			return refuse(err)
		}
		return nil, out, nil
	})
}

// agentArg is the agent a tool acts on: the one named, else the key's own.
type agentArg struct {
	AgentID string `json:"agentId,omitempty" jsonschema:"the agent's id; optional for a key bound to an agent, required for a team key"`
}

func (a agentArg) of(k *models.APIKey) (string, error) {
	if a.AgentID != "" {
		return a.AgentID, nil
	}
	if k.AgentID != nil {
		return *k.AgentID, nil
	}
	return "", models.Invalid("agentId", "is required with a team key")
}

type registerArgs struct {
	TeamID string `json:"teamId,omitempty" jsonschema:"the team to join; default: the key's team"`
	ID     string `json:"id" jsonschema:"the agent's id, unique in the organization"`
	agentDeclaration
}

type onboardingArgs struct {
	TeamID string `json:"teamId,omitempty" jsonschema:"a team of the key's organization; default: the key's team"`
}

type listArgs struct {
	Status   string `json:"status,omitempty" jsonschema:"pending, approved or stopped"`
	Presence string `json:"presence,omitempty" jsonschema:"online or offline"`
	TeamID   string `json:"teamId,omitempty"`
	Q        string `json:"q,omitempty" jsonschema:"text to search in ids and titles"`
	After    string `json:"after,omitempty" jsonschema:"the next cursor of the previous page"`
	Limit    int    `json:"limit,omitempty" jsonschema:"page size, 1 to 500 (default 100)"`
}

type whoamiOut struct {
	Org       orgJSON       `json:"org"`
	Team      teamRef       `json:"team"`
	KeyPrefix string        `json:"keyPrefix"`
	Agent     *agentSummary `json:"agent"`
	MCP       string        `json:"mcpSession,omitempty"`
}

type teamRef struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// teamArg parses an optional team id (default: the key's team).
func teamArg(s string, k *models.APIKey) (uuid.UUID, error) {
	if s == "" {
		return k.TeamID, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, models.Invalid("teamId", "must be a UUID")
	}
	return id, nil
}

func (h *Handler) addTools(s *mcp.Server) {
	tool(h, s, &mcp.Tool{Name: "whoami", Title: "Who am I",
		Description: "The organization and team of the API key, and the agent of a key bound to one (with its status)."},
		func(ctx context.Context, cl keyCall, _ struct{}) (any, error) {
			k := cl.key
			orgs, err := h.keyOrgs(ctx, cl)
			if err != nil {
				return nil, err
			}
			team, err := models.GetTeam(ctx, h.db, k.OrgID, k.TeamID)
			if err != nil {
				return nil, err
			}
			out := whoamiOut{Org: orgs[0], Team: teamRef{ID: team.ID, Name: team.Name}, KeyPrefix: k.Prefix, MCP: cl.actor.MCPSession}
			if k.AgentID != nil {
				a, err := h.cache.Agent(ctx, h.db, k.OrgID, *k.AgentID)
				if err != nil {
					return nil, err
				}
				sum := h.summary(a)
				out.Agent = &sum
			}
			return out, nil
		})
	tool(h, s, &mcp.Tool{Name: "register_agent", Title: "Register an agent",
		Description: "Registers a new agent in a team of the key's organization (a team key, or a key bound to that agent id). " +
			"The agent is pending until an operator approves it; poll get_status."},
		func(ctx context.Context, cl keyCall, in registerArgs) (any, error) {
			team, err := teamArg(in.TeamID, cl.key)
			if err != nil {
				return nil, err
			}
			a, err := h.register(ctx, cl, team, func(r *registerRequest) error {
				*r = registerRequest{ID: in.ID, agentDeclaration: in.agentDeclaration}
				return nil
			})
			if err != nil {
				return nil, err
			}
			return h.summary(a), nil
		})
	tool(h, s, &mcp.Tool{Name: "get_status", Title: "Agent status",
		Description: "The agent's status (pending, approved, stopped), presence and card pickup; allowed in every status."},
		func(ctx context.Context, cl keyCall, in agentArg) (any, error) {
			id, err := in.of(cl.key)
			if err != nil {
				return nil, err
			}
			return h.status(ctx, cl, id)
		})
	for _, online := range []bool{true, false} {
		name, title, desc := "go_online", "Go online", "Marks an approved agent online; call it again well within the presence window to stay online."
		if !online {
			name, title, desc = "go_offline", "Go offline", "Marks the agent offline; allowed in every status."
		}
		tool(h, s, &mcp.Tool{Name: name, Title: title, Description: desc},
			func(ctx context.Context, cl keyCall, in agentArg) (any, error) {
				id, err := in.of(cl.key)
				if err != nil {
					return nil, err
				}
				a, err := h.presence(ctx, cl, id, online)
				if err != nil {
					return nil, err
				}
				return h.summary(a), nil
			})
	}
	tool(h, s, &mcp.Tool{Name: "get_permissions", Title: "Agent permissions",
		Description: "The board columns an approved agent may read or moderate."},
		func(ctx context.Context, cl keyCall, in agentArg) (any, error) {
			id, err := in.of(cl.key)
			if err != nil {
				return nil, err
			}
			return h.permissions(ctx, cl, id)
		})
	tool(h, s, &mcp.Tool{Name: "get_onboarding", Title: "Team onboarding document",
		Description: "The onboarding document (markdown) of the key's team or of another team of its organization."},
		func(ctx context.Context, cl keyCall, in onboardingArgs) (any, error) {
			if err := h.keyLive(ctx, cl.key, "get_onboarding"); err != nil {
				return nil, err
			}
			team, err := teamArg(in.TeamID, cl.key)
			if err != nil {
				return nil, err
			}
			return h.onboarding(ctx, cl.key.OrgID, team)
		})
	tool(h, s, &mcp.Tool{Name: "list_agents", Title: "List agents",
		Description: "The agents of the key's organization, a page at a time (what GET /organizations/{orgId}/agents/mcp/list answers)."},
		func(ctx context.Context, cl keyCall, in listArgs) (any, error) {
			if err := h.keyLive(ctx, cl.key, "list_agents"); err != nil {
				return nil, err
			}
			q := agentQuery{Status: in.Status, Presence: in.Presence, TeamID: in.TeamID, Q: in.Q, After: in.After}
			if in.Limit != 0 {
				q.Limit = fmt.Sprint(in.Limit)
			}
			agents, next, err := h.keyAgents(ctx, cl, "", q)
			if err != nil {
				return nil, err
			}
			out := map[string]any{"agents": agents}
			if next != nil {
				out["next"] = next.String()
			}
			return out, nil
		})
}

// resourceError turns a refusal into the JSON-RPC error of a resource call,
// naming the JSON route's error code.
func resourceError(err error, uri string) error {
	status, code, message, details := classify(err)
	if status == http.StatusNotFound {
		return mcp.ResourceNotFoundError(uri)
	}
	data, _ := json.Marshal(map[string]any{"code": code, "status": status, "details": details})
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: code + ": " + message, Data: data}
}

// listOnboarding answers resources/list: the onboarding document of each
// team of the key's organization.
func (h *Handler) listOnboarding(ctx context.Context, req mcp.Request) (mcp.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	cl, err := h.mcpCall(ctx, req)
	if err != nil {
		return nil, resourceError(err, "")
	}
	if err := h.keyLive(ctx, cl.key, "resources/list"); err != nil {
		return nil, resourceError(err, "")
	}
	teams, err := models.ListTeams(ctx, h.db, cl.key.OrgID)
	if err != nil {
		return nil, resourceError(err, "")
	}
	out := &mcp.ListResourcesResult{Resources: make([]*mcp.Resource, len(teams))}
	for i, t := range teams {
		out.Resources[i] = &mcp.Resource{URI: onboardingURI + t.ID.String(), Name: "onboarding-" + t.Name,
			Title: "Onboarding: " + t.Name, MIMEType: "text/markdown",
			Description: "The onboarding document of the team " + t.Name + "."}
	}
	return out, nil
}

// readOnboarding answers resources/read of onboarding://team/{teamId}.
func (h *Handler) readOnboarding(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	uri := req.Params.URI
	cl, err := h.mcpCall(ctx, req)
	if err != nil {
		return nil, resourceError(err, uri)
	}
	if err := h.keyLive(ctx, cl.key, "resources/read"); err != nil {
		return nil, resourceError(err, uri)
	}
	id, err := uuid.Parse(strings.TrimPrefix(uri, onboardingURI))
	if err != nil || !strings.HasPrefix(uri, onboardingURI) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	doc, err := h.onboarding(ctx, cl.key.OrgID, id)
	if err != nil {
		return nil, resourceError(err, uri)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "text/markdown", Text: doc.Content}}}, nil
}
