/** Why a container could not start (the real kubelet's CreateContainerConfigError / StartError). */
export class ContainerConfigError extends Error {}
