export { CONTACT_FIELDS, toMetaDefinition, validateTemplateInput, variableUses } from './definition.ts';
export {
  applyTemplateStatusEvent,
  createTemplate,
  deleteTemplate,
  findTemplate,
  getTemplate,
  listTemplates,
  submitTemplate,
  TemplateConflictError,
  TemplateProviderError,
  templateStatusEvents,
  updateTemplate,
} from './registry.ts';
export {
  previewTemplate,
  renderTemplate,
  resolveVariables,
  type TemplatePreview,
  TemplateRenderError,
} from './render.ts';
export * from './types.ts';
export { checkSendParameters, TEMPLATE_LIMITS, validateTemplateDefinition } from './validation.ts';
