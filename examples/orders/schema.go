package main

import (
	"time"

	"github.com/tenantry/tenantry/migrations"
)

// Order is one customer order; it lives in every tenant's schema.
type Order struct {
	ID        int64       `gorm:"primaryKey" json:"id"`
	Customer  string      `gorm:"size:200;not null" json:"customer"`
	Lines     []OrderLine `gorm:"constraint:OnDelete:CASCADE" json:"lines"`
	CreatedAt time.Time   `json:"created_at"`
}

// OrderLine is one product line of an order.
type OrderLine struct {
	ID        int64  `gorm:"primaryKey" json:"id"`
	OrderID   int64  `gorm:"not null;index" json:"-"`
	SKU       string `gorm:"column:sku;size:32;not null" json:"sku"`
	Quantity  int32  `gorm:"not null" json:"quantity"`
	UnitCents int64  `gorm:"not null" json:"unit_cents"`
}

// app declares the program to tenantry: the models of every tenant schema
// and the steps that build them, oldest first. Step 1 is what GORM's
// AutoMigrate makes of the models; tenantry refuses to onboard when the
// two disagree, so a model change comes with a step.
var app = migrations.App{Tenant: migrations.Plan{
	Models: []any{&Order{}, &OrderLine{}},
	Steps: []migrations.Step{
		{Version: 1, Name: "orders and lines", Up: `
CREATE TABLE "orders" ("id" bigserial,"customer" varchar(200) NOT NULL,"created_at" timestamptz,PRIMARY KEY ("id"));
CREATE TABLE "order_lines" ("id" bigserial,"order_id" bigint NOT NULL,"sku" varchar(32) NOT NULL,"quantity" integer NOT NULL,"unit_cents" bigint NOT NULL,PRIMARY KEY ("id"),CONSTRAINT "fk_orders_lines" FOREIGN KEY ("order_id") REFERENCES "orders"("id") ON DELETE CASCADE);
CREATE INDEX "idx_order_lines_order_id" ON "order_lines" ("order_id")`},
	},
}}
