export { lpipsAlex, type LpipsOutputs } from './lpips';
