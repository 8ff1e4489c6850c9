package plan

// AgentHost is the name the agent answers to on the bottle's internal
// network, where the bundle's relay reaches the agent's published ports:
// the agent container's name, which the engine's DNS resolves there. ""
// for a backend without an internal network.
func (p Plan) AgentHost() string {
	if p.Docker == nil {
		return ""
	}
	return p.Docker.Container
}
