/**
 * The host panel's data, checked where the core reads it. The host directory is the host's code: a
 * bug there (an empty or NUL domain name, a missing hypervisor id) must fail with an error that
 * names the host's field, not as a spawn TypeError (500) or a hypervisor command's failure (502)
 * far away. Results are checked, never altered: extra fields of the host's records are fine.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { OsTypeSchema } from '../model/image';
import type { HostDirectory, HostHypervisor, HostInstance } from '../ports/host-directory';
import { isWellFormedText, zodIssues } from './validate';

/** A short identifier or name from the host: 1–200 characters, no control characters, well-formed Unicode. */
const HostTextSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters (e.g. NUL)')
  .refine(isWellFormedText, 'must be well-formed Unicode');

/** A secret or key text from the host: non-empty, no NUL. Never echoed. */
const HostSecretSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine((s) => !s.includes('\0'), 'must not contain NUL');

/** What a host directory must return for an instance. */
export const HostInstanceSchema = z.looseObject({
  id: HostTextSchema,
  name: z.string().max(200, 'must be at most 200 characters').refine(isWellFormedText, 'must be well-formed Unicode'),
  accountId: HostTextSchema,
  locationId: HostTextSchema,
  hypervisorId: HostTextSchema,
  domainName: HostTextSchema,
  osType: OsTypeSchema.nullish(),
  cloudInit: z.boolean().nullish(),
});

/** What a host directory must return for a hypervisor. */
export const HostHypervisorSchema = z.looseObject({
  id: HostTextSchema,
  name: z.string().max(200, 'must be at most 200 characters'),
  locationId: HostTextSchema,
  connection: z.discriminatedUnion('type', [
    z.looseObject({ type: z.literal('local') }),
    z.looseObject({
      type: z.literal('ssh'),
      host: HostTextSchema,
      port: z.number().int().min(1).max(65535).optional(),
      username: HostTextSchema,
      privateKey: HostSecretSchema,
      passphrase: z
        .string()
        .refine((s) => !s.includes('\0'), 'must not contain NUL')
        .optional(),
      hostKey: HostSecretSchema,
    }),
  ]),
  scratchDir: z
    .string()
    .min(1)
    .max(4096)
    .refine((s) => s.startsWith('/') && !s.includes('\0'), 'must be an absolute path without NUL')
    .optional(),
  libvirtUri: HostTextSchema.optional(),
});

function invalid(what: string, error: z.ZodError): InstanceImagesError {
  const fields = zodIssues(error);
  return new InstanceImagesError(
    'HOST_DATA_INVALID',
    `The host directory's ${what} is not valid: ${fields.map((f) => `${f.path || '(value)'}: ${f.message}`).join('; ')}`,
    { fields },
  );
}

/** `instance` when it is a valid host instance for `instanceId`. @throws HOST_DATA_INVALID naming the host's field. */
export function checkHostInstance(instance: HostInstance, instanceId: string): HostInstance {
  const what = `getInstance(${JSON.stringify(instanceId)})`;
  const result = HostInstanceSchema.safeParse(instance);
  if (!result.success) throw invalid(what, result.error);
  if (instance.id !== instanceId)
    throw new InstanceImagesError('HOST_DATA_INVALID', `The host directory's ${what} returned another instance's record`, {
      fields: [{ path: 'id', message: 'must be the id that was asked for' }],
    });
  return instance;
}

/** `hypervisor` when it is a valid host hypervisor. @throws HOST_DATA_INVALID naming the host's field (never a secret's value). */
export function checkHostHypervisor(hypervisor: HostHypervisor, what: string): HostHypervisor {
  const result = HostHypervisorSchema.safeParse(hypervisor);
  if (!result.success) throw invalid(what, result.error);
  return hypervisor;
}

/**
 * The host directory as the core reads it: every instance and hypervisor it returns is checked
 * (`null` stays `null`: gone). A result that is not an object is refused as well.
 */
export function checkedHostDirectory(host: HostDirectory): HostDirectory {
  const checked: HostDirectory = {
    async getInstance(instanceId) {
      const instance = await host.getInstance(instanceId);
      return instance === null || instance === undefined ? null : checkHostInstance(instance, instanceId);
    },
    async getHypervisor(hypervisorId) {
      const what = `getHypervisor(${JSON.stringify(hypervisorId)})`;
      const hypervisor = await host.getHypervisor(hypervisorId);
      if (hypervisor === null || hypervisor === undefined) return null;
      checkHostHypervisor(hypervisor, what);
      if (hypervisor.id !== hypervisorId)
        throw new InstanceImagesError('HOST_DATA_INVALID', `The host directory's ${what} returned another hypervisor's record`, {
          fields: [{ path: 'id', message: 'must be the id that was asked for' }],
        });
      return hypervisor;
    },
  };
  const list = host.listHypervisors?.bind(host);
  if (list) {
    checked.listHypervisors = async () => {
      const all = await list();
      if (!Array.isArray(all))
        throw new InstanceImagesError('HOST_DATA_INVALID', "The host directory's listHypervisors() must return an array");
      return all.map((hypervisor, index) => checkHostHypervisor(hypervisor, `listHypervisors()[${index}]`));
    };
  }
  return checked;
}
