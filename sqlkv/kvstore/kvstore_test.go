package kvstore_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

const password = "s3cret-pw"

func TestFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want kvstore.Config
	}{
		{"defaults", nil, kvstore.Config{Backend: "sqlite", Path: "./data/sms.db"}},
		{"sqlite path", map[string]string{"KV_PATH": "/var/lib/sms/kv.db"}, kvstore.SQLite("/var/lib/sms/kv.db")},
		{"sqlite normal", map[string]string{"KV_BACKEND": "sqlite", "KV_SQLITE_SYNCHRONOUS": "normal"},
			kvstore.Config{Backend: "sqlite", Path: "./data/sms.db", SQLiteSynchronous: "normal"}},
		{"memory", map[string]string{"KV_BACKEND": "memory"}, kvstore.Memory()},
		{"backend case and space", map[string]string{"KV_BACKEND": " Memory "}, kvstore.Memory()},
		{"postgres", map[string]string{"KV_BACKEND": "postgres", "KV_DSN": "postgres://db/sms"}, kvstore.Postgres("postgres://db/sms")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kvstore.FromEnv(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if got != tt.want {
				t.Fatalf("FromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	dsn := "postgres://sms:" + password + "@db/sms"
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string // each must appear in the error
	}{
		{"unknown backend", map[string]string{"KV_BACKEND": "mysql"},
			[]string{"KV_BACKEND", `"mysql"`, "memory, sqlite or postgres"}},
		{"postgres without DSN", map[string]string{"KV_BACKEND": "postgres"},
			[]string{"KV_DSN", "postgres"}},
		{"DSN with sqlite", map[string]string{"KV_DSN": dsn},
			[]string{"KV_DSN", "sqlite", "does not use"}},
		{"path with postgres", map[string]string{"KV_BACKEND": "postgres", "KV_DSN": dsn, "KV_PATH": "x.db"},
			[]string{"KV_PATH", "postgres", "does not use"}},
		{"synchronous with memory", map[string]string{"KV_BACKEND": "memory", "KV_SQLITE_SYNCHRONOUS": "full"},
			[]string{"KV_SQLITE_SYNCHRONOUS", "memory", "does not use"}},
		{"path with memory", map[string]string{"KV_BACKEND": "memory", "KV_PATH": "x.db"},
			[]string{"KV_PATH", "memory"}},
		{"bad synchronous", map[string]string{"KV_SQLITE_SYNCHRONOUS": "off"},
			[]string{"KV_SQLITE_SYNCHRONOUS", `"off"`, "full or normal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kvstore.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				t.Fatalf("FromEnv succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("FromEnv error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("FromEnv error contains the password: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  kvstore.Config
		want string // "" = valid
	}{
		{"memory", kvstore.Memory(), ""},
		{"sqlite", kvstore.SQLite("x.db"), ""},
		{"postgres", kvstore.Postgres("postgres://db/sms"), ""},
		{"empty backend", kvstore.Config{}, "Backend: empty"},
		{"unknown backend", kvstore.Config{Backend: "etcd"}, `Backend: "etcd" is not a backend; want memory, sqlite or postgres`},
		{"sqlite without path", kvstore.SQLite(""), "Path: empty, and the sqlite backend needs the database file"},
		{"postgres without DSN", kvstore.Postgres(""), "DSN: missing, and the postgres backend needs the connection string"},
		{"DSN with sqlite", kvstore.Config{Backend: "sqlite", Path: "x.db", DSN: "postgres://db"}, "DSN: set, but the sqlite backend does not use it"},
		{"synchronous with postgres", kvstore.Config{Backend: "postgres", DSN: "postgres://db", SQLiteSynchronous: "normal"}, "SQLiteSynchronous: set, but the postgres backend does not use it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate = nil, want an error mentioning %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestStringRedactsPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://sms:" + password + "@db:5432/sms?sslmode=disable",
		"postgres://sms@db/sms?password=" + password,
		"host=db user=sms password=" + password + " dbname=sms",
		"host=db user=sms password='" + password + " x' dbname=sms",
	} {
		got := kvstore.Postgres(dsn).String()
		if strings.Contains(got, password) || !strings.Contains(got, "xxxxx") {
			t.Errorf("String() = %q, want the password replaced by xxxxx", got)
		}
	}
}

func TestOpen(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			ctx := t.Context()
			if _, err := sqlkv.PutValue(ctx, s, []byte("k"), []byte("v")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
}

func TestOpenRejectsInvalid(t *testing.T) {
	if s, err := kvstore.Open(t.Context(), kvstore.Config{Backend: "etcd"}); err == nil {
		s.Close()
		t.Fatal("Open(etcd) succeeded")
	}
}

func TestOpenSQLiteSynchronous(t *testing.T) {
	cfg := kvstore.SQLite(filepath.Join(t.TempDir(), "kv.db"))
	cfg.SQLiteSynchronous = "normal"
	s, err := kvstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
}

func TestOpenPostgresUnreachableHidesPassword(t *testing.T) {
	_, err := kvstore.Open(t.Context(), kvstore.Postgres("postgres://sms:"+password+"@127.0.0.1:1/sms?sslmode=disable&connect_timeout=5"))
	if !errors.Is(err, sqlkv.ErrUnavailable) {
		t.Fatalf("Open(closed port) = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("Open error contains the password: %v", err)
	}
}

func TestParamError(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  kvstore.Config
		want []kvstore.Param
	}{
		{"skip migrations with memory", kvstore.Config{Backend: "memory", SkipMigrations: true}, []kvstore.Param{kvstore.ParamSkipMigrations}},
		{"group lanes with memory", kvstore.Config{Backend: "memory", GroupLanes: 2}, []kvstore.Param{kvstore.ParamGroupLanes}},
		{"two lanes on sqlite", kvstore.Config{Backend: "sqlite", Path: "x.db", GroupLanes: 2}, []kvstore.Param{kvstore.ParamGroupLanes}},
		{"path and dsn with memory", kvstore.Config{Backend: "memory", Path: "x.db", DSN: "postgres://db"}, []kvstore.Param{kvstore.ParamPath, kvstore.ParamDSN}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []kvstore.Param
			if joined, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range joined.Unwrap() {
					var pe *kvstore.ParamError
					if errors.As(e, &pe) {
						got = append(got, pe.Param)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Validate = %v: parameters %v, want %v", err, got, tt.want)
			}
		})
	}
	for _, ok := range []kvstore.Config{
		{Backend: "sqlite", Path: "x.db", GroupLanes: -1},
		{Backend: "postgres", DSN: "postgres://db", GroupLanes: 4},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}
