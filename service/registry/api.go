package registry

// The method set below is the contract the service layer codes against. It is
// implemented in nodes.go, resources.go and liveness.go.
//
//	func ParseStatus(s string) (Status, error)
//	func CanonicalUUID(s string) (string, error)
//
//	func NewNodeRegistry(store sqlkv.Store, opts ...Option) *NodeRegistry
//	func (r *NodeRegistry) Register(ctx context.Context, n Node) (Node, error)            // n.UUID "" = generate
//	func (r *NodeRegistry) Update(ctx context.Context, uuid string, n Node) (Node, error)
//	func (r *NodeRegistry) Delete(ctx context.Context, uuid string) error
//	func (r *NodeRegistry) Heartbeat(ctx context.Context, uuid string, health map[string]string) (time.Time, error)
//	func (r *NodeRegistry) Get(ctx context.Context, uuid string) (Node, error)
//	func (r *NodeRegistry) List(ctx context.Context, opts ListOptions) ([]Node, error)
//	func (r *NodeRegistry) ListPage(ctx context.Context, opts ListOptions) ([]Node, string, error) // keyset pages
//	func (r *NodeRegistry) Sweep(ctx context.Context, l Liveness) (SweepResult, error)
//
//	func NewNodeResourceRegistry(store sqlkv.Store, opts ...Option) *NodeResourceRegistry
//	func (r *NodeResourceRegistry) Update(ctx context.Context, res Resource) (Resource, error)
//	func (r *NodeResourceRegistry) Get(ctx context.Context, nodeUUID string) (Resource, bool, error)
//	func (r *NodeResourceRegistry) List(ctx context.Context, nodeUUIDs []string) ([]Resource, error)
//	func (r *NodeResourceRegistry) ListPage(ctx context.Context, pageSize int, token string) ([]Resource, string, error)
//	func (r *NodeResourceRegistry) IsHighLoad(res Resource) bool
//	func (r *NodeResourceRegistry) ClusterStats(ctx context.Context) (ClusterStats, error)
//
//	type Option func(*options)
//	func WithClock(now func() time.Time) Option
//	func WithThresholds(t Thresholds) Option
//
//	const DefaultHeartbeatTimeout = 90 * time.Second // Liveness.HeartbeatTimeout when zero
//
// Errors: ErrInvalid (a *ValidationError naming the field) for bad input,
// ErrNotFound for an absent node on Update, Delete, Heartbeat, Get and
// resource Update; sqlkv.ErrConflict, wrapped, only when concurrent writers
// to one node kept a write from going through after bounded retries; store
// errors (sqlkv.ErrUnavailable, ...) and context errors, wrapped.
