package service

import (
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// restPrefix is where SPEAR's original HTTP/JSON routes live.
const restPrefix = "/api/v1/"

// newREST returns the handler of the REST routes under /api/v1/: a vanguard
// transcoder that follows the google.api.http rules of node.proto and calls
// rpc, the sms.NodeService handler, so REST requests go through the same
// interceptors (auth, request size limit, panic recovery) and the same
// error table as RPCs. Connect codes become HTTP statuses (invalid_argument
// 400, not_found 404, unauthenticated 401, ...) with a google.rpc.Status JSON
// body.
//
// It fails only if node.proto's rules are malformed, which a test catches.
func newREST(rpc http.Handler) (http.Handler, error) {
	transcoder, err := vanguard.NewTranscoder(
		[]*vanguard.Service{vanguard.NewService(smspbconnect.NodeServiceName, rpc,
			// Binary to the handler, so every REST answer is re-encoded
			// by restJSON (unset fields included: "nodes": [],
			// "found": false) rather than passed through as it is.
			vanguard.WithTargetCodecs(vanguard.CodecProto))},
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			return restJSON{vanguard.NewJSONCodec(res)}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("rest transcoder: %w", err)
	}
	return jsonByDefault(createdOnRegister(transcoder)), nil
}

// jsonByDefault reads a request body without a Content-Type, or with curl
// -d's default application/x-www-form-urlencoded, as JSON: the routes take
// nothing else, and `curl -d '{...}'` should just work (vanguard would
// answer 415).
func jsonByDefault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch ct := r.Header.Get("Content-Type"); {
		case ct == "" && r.ContentLength != 0, ct == "application/x-www-form-urlencoded":
			r = r.Clone(r.Context())
			r.Header.Set("Content-Type", "application/json")
		}
		next.ServeHTTP(w, r)
	})
}

// restJSON is vanguard's JSON codec (unset fields written, unknown fields
// ignored), except that a request body that is not valid JSON for its
// message is invalid_argument (400), not unknown (500).
type restJSON struct{ *vanguard.JSONCodec }

func (c restJSON) Unmarshal(data []byte, msg proto.Message) error {
	return badJSON(c.JSONCodec.Unmarshal(data, msg))
}

func (c restJSON) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return badJSON(c.JSONCodec.UnmarshalField(data, msg, field))
}

func badJSON(err error) error {
	if err == nil {
		return nil
	}
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body: %w", err))
}

// createdOnRegister answers a successful POST /api/v1/nodes (RegisterNode)
// with 201 Created instead of 200, as SPEAR's original route did: an
// http.HttpRule has no way to name a success status, so vanguard always
// answers 200.
func createdOnRegister(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == restPrefix+"nodes" {
			w = &createdWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

// createdWriter turns a 200 status into 201; other statuses (errors) pass.
type createdWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *createdWriter) WriteHeader(code int) {
	if !w.wroteHeader && code == http.StatusOK {
		code = http.StatusCreated
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *createdWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *createdWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
