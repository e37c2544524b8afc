/** The controller: reconciles RLHFRun and RLHFIteration resources (being built). */
export const controllerPackage = '@rlhf/controller';
