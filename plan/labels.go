package plan

// Labels on every engine object and smolvm machine the plugin makes, in a
// namespace of the project's own (com.docker.* is Docker's), so ls, rm and
// prune find exactly what the plugin made.
const (
	LabelPrefix = "dev.dockerbottle."
	// LabelBottle holds the bottle's name (slug).
	LabelBottle = LabelPrefix + "bottle"
	// LabelRole says what the object is to the bottle: see Role*.
	LabelRole = LabelPrefix + "role"
	// LabelVersion is the plugin version that made the object.
	LabelVersion = LabelPrefix + "version"
	// LabelBackend is the bottle's backend (smolvm or docker).
	LabelBackend = LabelPrefix + "backend"
)

// Roles.
const (
	RoleBundle          = "bundle"
	RoleAgent           = "agent"
	RoleBundleNetwork   = "bundle-network"
	RoleInternalNetwork = "internal-network"
	RoleImage           = "image"
	// RoleDisk is a volume the agent keeps its workspace or home on.
	RoleDisk = "disk"
	// RoleStage is the volume that holds the bundle's stage on the engine
	// (BundlePlan.StageOnEngine), RoleGuest the one with what the bottle
	// reads at GuestDir.
	RoleStage = "stage"
	RoleGuest = "guest"
)
