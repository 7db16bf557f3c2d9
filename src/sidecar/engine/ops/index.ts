/**
 * The op library. Importing this module registers every op; model code imports the op functions
 * from here (`import { add, conv2d, ... } from '../engine/ops'`).
 */
export * from './operand';
export * from './elementwise';
export * from './unary';
export * from './activation';
export * from './logic';
export * from './clamp';
export * from './convert';
export * from './reduce';
export * from './shape-ops';
export * from './linalg';
export * from './conv';
export * from './normalization';
export * from './resample';
