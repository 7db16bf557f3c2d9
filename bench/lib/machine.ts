/** A description of the machine a benchmark ran on, and a short name for result file names. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import * as ort from 'onnxruntime-node';

export interface MachineDescription {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly platform: string;
  /** NVIDIA GPUs as nvidia-smi names them; empty when there is none (or no driver). */
  readonly gpus: readonly string[];
  readonly node: string;
  readonly onnxruntime: string;
}

export function describeMachine(): MachineDescription {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform} ${process.arch} ${os.release()}`,
    gpus: nvidiaGpus(),
    node: process.version,
    onnxruntime: ort.env.versions.common,
  };
}

function nvidiaGpus(): string[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').map((line) => line.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** e.g. `intel-xeon-platinum-8481c-2c` or `amd-epyc-9654-16c-nvidia-h200`: CPU model, core count, first GPU. */
export function machineSlug(machine: MachineDescription): string {
  const slug = (text: string) =>
    text
      .toLowerCase()
      .replace(/\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$|\d+-core/g, ' ')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '');
  const gpu = machine.gpus[0] ? `-${slug(machine.gpus[0])}` : '';
  return `${slug(machine.cpu) || 'cpu'}-${machine.cores}c${gpu}`;
}
