/**
 * How a stage pod learns the server its sampling is handed to when the controller starts that server (a
 * vLLM Deployment and Service per sampling unit): two variables on the stage Job, written by the
 * controller and read by the stage.
 */
export const engineUrlEnv = 'RLHF_GENERATE_ENGINE_URL';
export const engineModelEnv = 'RLHF_GENERATE_ENGINE_MODEL';
