/** The graph engine: build typed graphs, differentiate them, write them as ONNX, run them. */
export * from './dtype';
export * from './shape';
export * from './graph';
export * as ops from './ops';
export { serializeGraph, OPSET, type SerializedModel, type SerializeOptions } from './onnx/serialize';
export { vjp, grad, NotDifferentiableError, type Seed, type VjpOptions, type RecomputePolicy } from './autodiff';
